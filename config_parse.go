package federated

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LoadConfig reads a federation from a YAML or JSON file of at most
// MaxConfigBytes. Unknown keys are errors. The configuration is validated
// as New would validate it. Errors name the file, and the field at fault
// by its path and its line.
func LoadConfig(path string) (Config, error) {
	f, err := openFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	defer f.Close()
	// A federation file of thousands of nodes takes a few hundred KB: what
	// is larger is not one (/dev/zero, a log named by mistake), and would
	// be read whole into memory.
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if len(data) > MaxConfigBytes {
		return Config{}, fmt.Errorf("%w: %s: more than %d bytes (MaxConfigBytes): not a federation file", ErrInvalidConfig, path, MaxConfigBytes)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// MaxConfigBytes bounds a federation file that LoadConfig reads.
const MaxConfigBytes = 16 << 20

// ParseConfig parses a federation from YAML or JSON (JSON is YAML too) and
// validates it. The data holds one YAML document. An error names the field
// at fault by its path and its line, and never shows the password, even
// where an alias or a tag has carried it into another field.
func ParseConfig(data []byte) (Config, error) {
	doc, err := oneDocument(data)
	if err != nil {
		return Config{}, err
	}
	v := validator{}
	if pw, ok := lookup(doc, fieldPath{"options", "password"}); ok && pw.Kind == yaml.ScalarNode {
		v = v.withSecret(pw.Value)
		// "password: &s3cret" or "password: !s3cret" is an anchor or a
		// tag on an empty value to YAML: no password, silently.
		if pw.Value == "" && (pw.Anchor != "" || pw.Tag != "" && pw.Tag != "!!null" && pw.Tag != "!!str") {
			return Config{}, fmt.Errorf("%w: options.password: empty, for YAML takes what follows '&' or '!' for an anchor or a tag; quote the password (line %d)",
				ErrInvalidConfig, pw.Line)
		}
	}
	lineOf := func(p fieldPath) int {
		if n, ok := lookup(doc, p); ok {
			return n.Line
		}
		return 0
	}
	if err := v.secondsToDurations(doc); err != nil {
		return Config{}, v.finish(err, nil)
	}
	numbersToBooleans(doc)
	c := shapeChecker{validator: v, seen: map[aliased]bool{}}
	if err := c.check(doc, reflect.TypeFor[Config](), fieldPath{}); err != nil {
		return Config{}, v.finish(err, nil)
	}
	// The decoder compares every key of a mapping with every other: the
	// nodes of a file past what a ring takes (100,000 of them, 1 MB) took
	// it a minute before they were refused.
	if nodes, ok := lookup(doc, fieldPath{"nodes"}); ok && nodes.Kind == yaml.MappingNode {
		ringName := ""
		if r, ok := lookup(doc, fieldPath{"options", "ring"}); ok {
			ringName = r.Value
		}
		if err := v.nodeCount(len(nodes.Content)/2, ringName); err != nil {
			return Config{}, v.finish(err, lineOf)
		}
	}

	// Re-encode the adjusted tree so the strict decoder can report what
	// the check above let through; yaml.Node.Decode has no KnownFields
	// switch.
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(doc); err != nil {
		return Config{}, v.redact(fmt.Errorf("%w: %v", ErrInvalidConfig, err))
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	var cfg Config
	// A document of only a null ("---", "~") re-encodes as nothing: EOF.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, v.redact(fmt.Errorf("%w: %v", ErrInvalidConfig, strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	v = v.withSecret(cfg.Options.Password)
	if err := v.config(cfg); err != nil {
		return Config{}, v.finish(err, lineOf)
	}
	return cfg, nil
}

// oneDocument parses data as YAML and returns the root of its one
// document. A second document ("---" and what follows) is refused: the
// file would say more than a federation is read from. The YAML parser's
// errors say where they are, and quote no value.
func oneDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	switch err := dec.Decode(&root); {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%w: empty document", ErrInvalidConfig)
	case err != nil:
		return nil, syntaxError(data, err)
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case errors.Is(err, io.EOF):
		return root.Content[0], nil
	case err != nil:
		return nil, fmt.Errorf("%w: a second YAML document follows the first, and is not YAML: %v", ErrInvalidConfig, err)
	}
	return nil, fmt.Errorf("%w: a second YAML document begins at line %d; a federation file holds one", ErrInvalidConfig, second.Line)
}

// shapeChecker walks a document with the type it decodes into, before it
// is decoded, so that a key no field takes, a key given twice and a value
// the field cannot hold are refused by their path and their line in the
// file, in words that show no secret. The decoder would name a Go type, a
// line of the re-encoded document and the value itself.
type shapeChecker struct {
	validator
	// seen holds each anchored node walked as a type, which is walked once
	// however many aliases name it, so that a document of aliases of
	// aliases takes no longer than its size.
	seen map[aliased]bool
}

// aliased is an anchored node walked as a type.
type aliased struct {
	node *yaml.Node
	t    reflect.Type
}

var durationType = reflect.TypeFor[time.Duration]()

// check checks n, at path, as a value of type t.
func (c shapeChecker) check(n *yaml.Node, t reflect.Type, path fieldPath) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if c.seen[aliased{n.Alias, t}] {
			return nil
		}
		c.seen[aliased{n.Alias, t}] = true
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return nil // the zero value
	}
	switch {
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return c.cannot(n, t, path)
		}
		for i, e := range n.Content {
			// The decoder drops a null entry ("-" with nothing after it,
			// "~"): a server of a group would vanish without a word.
			if isNull(e) {
				return c.failAt(path.at(i), e.Line, "empty entry")
			}
			if err := c.check(e, t.Elem(), path.at(i)); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return c.cannot(n, t, path)
		}
		return c.mapping(n, t, path)
	case n.Kind != yaml.ScalarNode:
		return c.cannot(n, t, path)
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		return c.cannot(n, t, path)
	}
	return nil
}

// mapping checks the keys and values of mapping n as a struct or map t: a
// key no field of a struct takes, a key that is not a string and a key
// given twice are refused. Mappings merged in ("<<: *defaults") are checked
// as t too.
func (c shapeChecker) mapping(n *yaml.Node, t reflect.Type, path fieldPath) error {
	var fields map[string]reflect.Type
	if t.Kind() == reflect.Struct {
		fields = yamlFields(t)
	}
	lines := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			sources := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				sources = val.Content
			}
			for _, src := range sources {
				if err := c.check(src, t, path); err != nil {
					return err
				}
			}
			continue
		}
		name, ok := keyName(k)
		if !ok {
			return c.failAt(path, k.Line, "the key at line %d is not a string", k.Line)
		}
		if isNull(k) {
			// The decoder drops a null key ("~:"), and its value with it.
			return c.failAt(path, k.Line, "the key at line %d is empty (null)", k.Line)
		}
		if first, dup := lines[name]; dup {
			return c.failAt(path.at(name), k.Line, "already defined at line %d", first)
		}
		lines[name] = k.Line
		elem := t
		if fields != nil {
			if elem, ok = fields[name]; !ok {
				return c.unknownField(path.at(name), k.Line, name, val, fields)
			}
		} else {
			elem = t.Elem()
		}
		if err := c.check(val, elem, path.at(name)); err != nil {
			return err
		}
	}
	return nil
}

// unknownField refuses the key name, at path, that no field of a mapping
// of fields takes, with the fields it may have meant, and, where those
// are durations and val is not one, what a duration looks like.
func (c shapeChecker) unknownField(path fieldPath, line int, name string, val *yaml.Node, fields map[string]reflect.Type) error {
	err := c.fail(path, "unknown field")
	if c.hides(name) {
		return err.done(line)
	}
	near := suggestFields(name, slices.Collect(maps.Keys(fields)))
	if len(near) == 0 {
		return err.done(line)
	}
	durations := true
	for _, f := range near {
		durations = durations && fields[f] == durationType
	}
	last := len(near) - 1
	if last > 0 {
		near = append(near[:last-1], near[last-1]+" or "+near[last])
	}
	err.hint = "did you mean " + strings.Join(near, ", ") + "?"
	if val = resolve(val); durations && val.Kind == yaml.ScalarNode && !isDuration(val.Value) {
		err.hint += fmt.Sprintf(" %s is not a duration either: write %s", c.quote(val.Value), kindName(durationType))
	}
	return err.done(line)
}

// isDuration reports whether s is a duration as a file may write it: a
// Go duration or a number of seconds.
func isDuration(s string) bool {
	if _, err := time.ParseDuration(s); err == nil {
		return true
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// cannot refuses n, at path, as a value of type t: what n is (a list, a
// mapping, or its value quoted, and its tag where one is written) and what
// the field wants. The password's own field never shows its value.
func (c shapeChecker) cannot(n *yaml.Node, t reflect.Type, path fieldPath) error {
	what := "a mapping"
	switch {
	case n.Kind == yaml.SequenceNode:
		what = "a list"
	case n.Kind != yaml.ScalarNode:
	case path.is("options", "password"):
		what = redacted
	default:
		what = c.quote(n.Value)
	}
	if n.Style&yaml.TaggedStyle != 0 {
		what += " tagged " + n.Tag
	}
	return c.failAt(path, n.Line, "cannot unmarshal %s into %s", what, kindName(t))
}

// kindName says what a value of type t is, in a configuration's words.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	if t == durationType {
		return `a duration ("1s", "250ms") or a number of seconds`
	}
	return "an integer"
}

// isNull reports a null scalar: "~", "null", or nothing at all (an
// alias of one included).
func isNull(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// keyName returns the string a mapping key stands for, through an alias,
// and false for a key that is not a scalar (a list or a mapping).
func keyName(k *yaml.Node) (string, bool) {
	if k.Kind == yaml.AliasNode {
		k = k.Alias
	}
	if k == nil || k.Kind != yaml.ScalarNode {
		return "", false
	}
	var name string
	if err := k.Decode(&name); err != nil {
		return k.Value, true
	}
	return name, true
}

// yamlFields returns the fields of struct type t by their YAML keys.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// lookup returns the node of the field at path in doc, through aliases and
// merged mappings, with the line of its key (or of its element in a list;
// of the first alias on the way, where there is one), and false where doc
// does not hold it (a field left to its default).
func lookup(doc *yaml.Node, path fieldPath) (*yaml.Node, bool) {
	n, line := doc, 0
	via := 0 // the line of the first alias on the way: where the field is used
	for _, step := range path {
		if n.Kind == yaml.AliasNode && via == 0 {
			via = line
		}
		n = resolve(n)
		switch s := step.(type) {
		case string:
			k, val := entry(n, s, map[*yaml.Node]bool{})
			if k == nil {
				return nil, false
			}
			n, line = val, k.Line
		case int:
			if n.Kind != yaml.SequenceNode || s >= len(n.Content) {
				return nil, false
			}
			n = n.Content[s]
			line = n.Line
		}
	}
	found := *resolve(n)
	found.Line = line
	if via != 0 {
		// A node written once with an anchor and used again through an
		// alias (redis_2: *a) is refused where it is used, not at the
		// anchor, which another node uses without fault.
		found.Line = via
	}
	return &found, true
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// entry returns the key and value nodes of key in mapping m, or in the
// mappings merged into it, where a key of m's own wins; nil where neither
// has it. visited holds the merged mappings already searched.
func entry(m *yaml.Node, key string, visited map[*yaml.Node]bool) (k, val *yaml.Node) {
	m = resolve(m)
	if m.Kind != yaml.MappingNode || visited[m] {
		return nil, nil
	}
	visited[m] = true
	var merged []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Tag == "!!merge" {
			merged = append(merged, m.Content[i+1])
			continue
		}
		if name, ok := keyName(m.Content[i]); ok && name == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	for _, src := range merged {
		sources := []*yaml.Node{src}
		if src.Kind == yaml.SequenceNode {
			sources = src.Content
		}
		for _, s := range sources {
			if k, val := entry(s, key, visited); k != nil {
				return k, val
			}
		}
	}
	return nil, nil
}

// secondsToDurations rewrites numeric duration options (seconds, as in the
// Perl configuration) into duration strings, wherever the decoder finds
// them (eachOption). A negative number of seconds, one that is not 0 but
// less than a nanosecond (which would read as 0, the default), and one
// beyond what a time.Duration holds (about 292 years) are errors.
func (v validator) secondsToDurations(doc *yaml.Node) error {
	return eachOption(doc, func(m *yaml.Node, i int, key string, overridden bool) error {
		opt, ok := durationOptionOf(key)
		if !ok {
			return nil
		}
		val := m.Content[i]
		num := resolve(val)
		if num.Kind != yaml.ScalarNode || (num.Tag != "!!int" && num.Tag != "!!float") {
			return nil
		}
		secs, err := strconv.ParseFloat(num.Value, 64)
		if err != nil {
			return nil // the check of the document's shape reports it
		}
		path := fieldPath{"options", key}
		d := time.Duration(secs * float64(time.Second))
		switch {
		case overridden:
			// Decoded all the same, and then replaced: written so that
			// it decodes, and not refused for what it says.
			if math.Abs(secs) >= maxDurationSeconds {
				d = 0
			}
		case math.Abs(secs) >= maxDurationSeconds:
			return v.failAt(path, val.Line, "%s seconds is out of range", v.show(num.Value))
		case secs < 0:
			return v.failAt(path, val.Line, "negative duration of %s seconds", v.show(num.Value))
		case d == 0 && nonzero(num.Value):
			return v.failAt(path, val.Line, "%s seconds is less than a nanosecond, and would mean the default: write 0 for it, or at least %v",
				v.show(num.Value), opt.floor)
		}
		if val == num {
			num.Value, num.Tag, num.Style = d.String(), "!!str", 0
			return nil
		}
		// Through an alias: the number it names stays as it is for the
		// other fields that may name it too.
		m.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: d.String(), Line: val.Line, Column: val.Column}
		return nil
	})
}

// nonzero reports whether a number as written is not 0, even where it is
// too small for a float64 (1e-400).
func nonzero(number string) bool {
	mantissa, _, _ := strings.Cut(strings.ToLower(number), "e")
	return strings.ContainsAny(mantissa, "123456789")
}

// numbersToBooleans rewrites 0 and 1 given to a boolean option (as the Perl
// configuration writes query_all) into false and true, wherever the
// decoder finds them (eachOption). Any other number is left for the check
// of the document's shape to refuse.
func numbersToBooleans(doc *yaml.Node) {
	fields := yamlFields(reflect.TypeFor[Options]())
	_ = eachOption(doc, func(m *yaml.Node, i int, key string, _ bool) error {
		val := m.Content[i]
		num := resolve(val)
		if fields[key] != reflect.TypeFor[bool]() || num.Kind != yaml.ScalarNode || num.Tag != "!!int" {
			return nil
		}
		var b string
		switch num.Value {
		case "0":
			b = "false"
		case "1":
			b = "true"
		default:
			return nil
		}
		if val == num {
			num.Value, num.Tag, num.Style = b, "!!bool", 0
			return nil
		}
		m.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: b, Line: val.Line, Column: val.Column}
		return nil
	})
}

// eachOption calls fn with every key of doc's options, as the decoder
// reads it (a key given by an alias included), and the index in the
// mapping m that holds it of its value: the keys of options itself, and
// those of the mappings merged into it ("<<: *defaults"), each mapping
// once, as entry finds them. It stops at fn's first error.
func eachOption(doc *yaml.Node, fn func(m *yaml.Node, i int, key string, overridden bool) error) error {
	_, options := entry(doc, "options", map[*yaml.Node]bool{})
	if options == nil {
		return nil
	}
	return eachKey(options, map[*yaml.Node]bool{}, map[string]bool{}, fn)
}

// eachKey is eachOption for mapping m and the mappings merged into it, in
// the order that gives a key its value: a mapping's own keys, then its
// merged mappings, the first of a list first. A key already seen is
// overridden: the decoder reads its value, and drops it. visited holds
// the mappings already walked, seen the keys.
func eachKey(m *yaml.Node, visited map[*yaml.Node]bool, seen map[string]bool, fn func(m *yaml.Node, i int, key string, overridden bool) error) error {
	m = resolve(m)
	if m.Kind != yaml.MappingNode || visited[m] {
		return nil
	}
	visited[m] = true
	var merged []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Tag == "!!merge" {
			if src := m.Content[i+1]; src.Kind == yaml.SequenceNode {
				merged = append(merged, src.Content...)
			} else {
				merged = append(merged, src)
			}
			continue
		}
		if key, ok := keyName(m.Content[i]); ok {
			if err := fn(m, i+1, key, seen[key]); err != nil {
				return err
			}
			seen[key] = true
		}
	}
	for _, src := range merged {
		if err := eachKey(src, visited, seen, fn); err != nil {
			return err
		}
	}
	return nil
}

// maxDurationSeconds bounds a duration given in seconds: the longest
// time.Duration, rounded down to a power of two that float64 holds exactly.
const maxDurationSeconds = 1 << 33 // 272 years
