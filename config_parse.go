package federated

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// durationOptions are the Options keys whose file values may be numbers of
// seconds.
var durationOptions = []string{
	"command_timeout", "base_retry_interval", "max_retry_interval",
	"idle_timeout", "dial_timeout", "read_timeout", "write_timeout",
}

// LoadConfig reads a federation from a YAML or JSON file. Unknown keys are
// errors. The configuration is validated as New would validate it.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses a federation from YAML or JSON (JSON is YAML too) and
// validates it.
func ParseConfig(data []byte) (Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if len(root.Content) == 0 {
		return Config{}, fmt.Errorf("%w: empty document", ErrInvalidConfig)
	}
	if err := secondsToDurations(root.Content[0]); err != nil {
		return Config{}, err
	}
	if err := unknownField(root.Content[0], reflect.TypeFor[Config](), "", map[aliased]bool{}); err != nil {
		return Config{}, err
	}

	// Re-encode the adjusted tree so the strict decoder can report unknown
	// keys; yaml.Node.Decode has no KnownFields switch.
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&root); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	var cfg Config
	// A document of only a null ("---", "~") re-encodes as nothing: EOF.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// unknownField returns an error that names the first key of n that no
// field of t takes, by its path ("options.tls.ca_fle") and its line in the
// document, or a key that is not a string; else nil. t is a struct, or maps,
// slices and pointers leading to one; a node of another shape than t is left
// to the decoder to report. An anchored node is walked once per type however
// many aliases name it (seen), so that a document of aliases of aliases
// takes no longer than its size.
func unknownField(n *yaml.Node, t reflect.Type, path string, seen map[aliased]bool) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if seen[aliased{n.Alias, t}] {
			return nil
		}
		seen[aliased{n.Alias, t}] = true
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var fields map[string]reflect.Type
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if err := unknownField(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), seen); err != nil {
				return err
			}
		}
		return nil
	case n.Kind != yaml.MappingNode:
		return nil
	case t.Kind() == reflect.Struct:
		fields = yamlFields(t)
	case t.Kind() != reflect.Map:
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" { // "<<: *defaults" merges mappings into this one
			sources := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				sources = v.Content
			}
			for _, src := range sources {
				if err := unknownField(src, t, path, seen); err != nil {
					return err
				}
			}
			continue
		}
		name, ok := keyName(k)
		if !ok {
			return fmt.Errorf("%w: %s: the key at line %d is not a string", ErrInvalidConfig, pathOrTop(path), k.Line)
		}
		elem := t
		if fields != nil {
			if elem, ok = fields[name]; !ok {
				return fmt.Errorf("%w: %s: unknown field (line %d)", ErrInvalidConfig, pathAt(path, name), k.Line)
			}
		} else {
			elem = t.Elem()
		}
		if err := unknownField(v, elem, pathAt(path, name), seen); err != nil {
			return err
		}
	}
	return nil
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

// pathAt returns the path of key under path: "options.tls", or
// nodes["a.b"] for a key that is empty or holds a dot.
func pathAt(path, key string) string {
	switch {
	case key == "" || strings.Contains(key, "."):
		return fmt.Sprintf("%s[%q]", path, key)
	case path == "":
		return key
	}
	return path + "." + key
}

// pathOrTop returns path, or "top level" for the document's root.
func pathOrTop(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// aliased is an anchored node walked as a type.
type aliased struct {
	node *yaml.Node
	t    reflect.Type
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

// secondsToDurations rewrites numeric duration options (seconds, as in the
// Perl configuration) into duration strings. A number of seconds beyond
// what a time.Duration holds (about 292 years) is an error.
func secondsToDurations(doc *yaml.Node) error {
	options := mappingValue(doc, "options")
	if options == nil || options.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(options.Content); i += 2 {
		key, val := options.Content[i], options.Content[i+1]
		if !slices.Contains(durationOptions, key.Value) || val.Kind != yaml.ScalarNode {
			continue
		}
		if val.Tag != "!!int" && val.Tag != "!!float" {
			continue
		}
		secs, err := strconv.ParseFloat(val.Value, 64)
		if err != nil {
			continue // the decoder reports it
		}
		if math.Abs(secs) >= maxDurationSeconds {
			return fmt.Errorf("%w: options.%s: %s seconds is out of range", ErrInvalidConfig, key.Value, val.Value)
		}
		val.Value = time.Duration(secs * float64(time.Second)).String()
		val.Tag = "!!str"
		val.Style = 0
	}
	return nil
}

// maxDurationSeconds bounds a duration given in seconds: the longest
// time.Duration, rounded down to a power of two that float64 holds exactly.
const maxDurationSeconds = 1 << 33 // 272 years

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
