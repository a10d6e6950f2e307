package federated

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redfed/federated/internal/metric"
)

// fieldError is the refusal of one field of a configuration. It wraps
// ErrInvalidConfig and reads "federated: invalid configuration: PATH:
// PROBLEM (line N)", the line where the field is in the file it came from.
type fieldError struct {
	// path names the field, for finding its line; it is dropped once the
	// error is final (done), since a node name in it may be the password.
	path fieldPath
	// where is path as printed, with a secret redacted.
	where   string
	problem string
	line    int // 0: not from a file, or not in it (a default)
	// hint, when set, follows the line: what was probably meant.
	hint string
}

// Error says which field is refused, why, and where in the file.
func (e *fieldError) Error() string {
	msg := ErrInvalidConfig.Error() + ": " + e.where + ": " + e.problem
	if e.line > 0 {
		msg += fmt.Sprintf(" (line %d)", e.line)
	}
	if e.hint != "" {
		msg += "; " + e.hint
	}
	return msg
}

// Unwrap makes a fieldError match ErrInvalidConfig.
func (e *fieldError) Unwrap() error { return ErrInvalidConfig }

// done sets the error's line, 0 where unknown, and drops its path.
func (e *fieldError) done(line int) error {
	e.line, e.path = line, nil
	return e
}

// fieldPath names a field of a configuration from the top of the document:
// each step is a key (a string) or the index of an element of a list (an
// int).
type fieldPath []any

// at returns the path of a step below p, leaving p as it is.
func (p fieldPath) at(step any) fieldPath {
	return append(p[:len(p):len(p)], step)
}

// is reports whether p names the field of the given keys.
func (p fieldPath) is(keys ...string) bool {
	if len(p) != len(keys) {
		return false
	}
	for i, k := range keys {
		if p[i] != k {
			return false
		}
	}
	return true
}

// validator checks configurations and words their refusals. secrets are
// the password, as written in the file and as decoded: no refusal shows a
// value or a key that holds one, whatever path (an alias, a tag, a value
// copied into another field) brought it there.
type validator struct {
	secrets []string
}

// withSecret returns a validator that also hides s, as it is and as %q
// escapes it inside quotes (a password with a control character, quoted by
// an error worded elsewhere).
func (v validator) withSecret(s string) validator {
	secrets := v.secrets[:len(v.secrets):len(v.secrets)]
	quoted := strconv.Quote(s)
	for _, form := range []string{s, quoted[1 : len(quoted)-1]} {
		if form != "" && !slices.Contains(secrets, form) {
			secrets = append(secrets, form)
		}
	}
	return validator{secrets: secrets}
}

// hides reports whether s holds a secret.
func (v validator) hides(s string) bool {
	for _, secret := range v.secrets {
		if strings.Contains(s, secret) {
			return true
		}
	}
	return false
}

// show returns s to be printed in an error: redacted when it holds a
// secret.
func (v validator) show(s string) string {
	if v.hides(s) {
		return redacted
	}
	return s
}

// maxQuotedValue is how many bytes of a value a refusal quotes.
const maxQuotedValue = 128

// quote returns s quoted for an error, cut after maxQuotedValue bytes, or
// redacted when it holds a secret.
func (v validator) quote(s string) string {
	switch {
	case v.hides(s):
		return redacted
	case len(s) > maxQuotedValue:
		return strconv.Quote(s[:maxQuotedValue]) + "..."
	}
	return strconv.Quote(s)
}

// fail returns the refusal of the field at path.
func (v validator) fail(path fieldPath, format string, args ...any) *fieldError {
	return &fieldError{path: path, where: v.where(path), problem: fmt.Sprintf(format, args...)}
}

// failAt returns the refusal of a field at a known line of the file.
func (v validator) failAt(path fieldPath, line int, format string, args ...any) error {
	return v.fail(path, format, args...).done(line)
}

// where prints a path as a file spells it: options.tls.ca_file,
// nodes.a.addresses[1], and a key that is empty, holds a '.', a bracket, a
// quote, a space or a character Unreadable refuses in brackets and quotes
// (nodes["a.b"], nodes["web\u200b1"]); a key that holds a secret is
// redacted. The top of the document is "top level".
func (v validator) where(p fieldPath) string {
	if len(p) == 0 {
		return "top level"
	}
	var b strings.Builder
	for _, step := range p {
		switch s := step.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		case string:
			if !v.hides(s) && (s == "" || strings.ContainsAny(s, `.[]" `) || metric.Unreadable(s) != "") {
				fmt.Fprintf(&b, "[%s]", v.quote(s))
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v.show(s))
		}
	}
	return b.String()
}

// redact returns err, or, where its message holds a secret, an error that
// wraps ErrInvalidConfig and says the same with the secret redacted. It is
// for errors worded elsewhere (the YAML parser's, the metrics options'),
// which may quote what they read.
func (v validator) redact(err error) error {
	if err == nil || !v.hides(err.Error()) {
		return err
	}
	msg := err.Error()
	for _, secret := range v.secrets {
		msg = strings.ReplaceAll(msg, secret, redacted)
	}
	if detail, ok := strings.CutPrefix(msg, ErrInvalidConfig.Error()+": "); ok {
		msg = detail
	}
	return fmt.Errorf("%w: %s", ErrInvalidConfig, msg)
}

// finish makes err final for a caller: a fieldError gets its line (where
// line is not nil and the error has none yet) and loses its path; any other
// error has the secrets redacted.
func (v validator) finish(err error, line func(fieldPath) int) error {
	var fe *fieldError
	if !errors.As(err, &fe) {
		return v.redact(err)
	}
	l := fe.line
	if l == 0 && line != nil && fe.path != nil {
		l = line(fe.path)
	}
	return fe.done(l)
}
