package federated

import (
	"encoding"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// A command's arguments reach Redis as go-redis writes them
// (proto.Writer.WriteArg of go-redis v9), and a key is stored under that
// name: a *string as its string, a bool as 1 or 0, a time.Time in RFC 3339
// with nanoseconds, a time.Duration in nanoseconds, an
// encoding.BinaryMarshaler as its bytes (not its String), a float32 or
// float64 in 'f' format of 64 bits. The client places a key by the same
// name, or data would land on a node where KeyToNode of its name does not
// look. appendArg writes what WriteArg writes, case for case, in its
// order: go-redis's writer is internal, and its order matters (a time.Time
// is a BinaryMarshaler too).

// appendArg appends an argument as go-redis writes it to Redis, or returns
// the error go-redis's writer returns for it.
func appendArg(b []byte, a any) ([]byte, error) {
	switch v := a.(type) {
	case nil:
		return b, nil
	case string:
		return append(b, v...), nil
	case *string:
		return append(b, deref(v)...), nil
	case []byte:
		return append(b, v...), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case *int:
		return strconv.AppendInt(b, int64(deref(v)), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(v), 10), nil
	case *int8:
		return strconv.AppendInt(b, int64(deref(v)), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(v), 10), nil
	case *int16:
		return strconv.AppendInt(b, int64(deref(v)), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case *int32:
		return strconv.AppendInt(b, int64(deref(v)), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case *int64:
		return strconv.AppendInt(b, deref(v), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case *uint:
		return strconv.AppendUint(b, uint64(deref(v)), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case *uint8:
		return strconv.AppendUint(b, uint64(deref(v)), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case *uint16:
		return strconv.AppendUint(b, uint64(deref(v)), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case *uint32:
		return strconv.AppendUint(b, uint64(deref(v)), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case *uint64:
		return strconv.AppendUint(b, deref(v), 10), nil
	case uintptr:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case *uintptr:
		return strconv.AppendUint(b, uint64(deref(v)), 10), nil
	case float32:
		return strconv.AppendFloat(b, float64(v), 'f', -1, 64), nil // widened first, as go-redis does
	case *float32:
		return strconv.AppendFloat(b, float64(deref(v)), 'f', -1, 64), nil
	case float64:
		return strconv.AppendFloat(b, v, 'f', -1, 64), nil
	case *float64:
		return strconv.AppendFloat(b, deref(v), 'f', -1, 64), nil
	case bool:
		return appendBool(b, v), nil
	case *bool:
		return appendBool(b, deref(v)), nil
	case time.Time:
		return v.AppendFormat(b, time.RFC3339Nano), nil
	case *time.Time:
		return deref(v).AppendFormat(b, time.RFC3339Nano), nil
	case time.Duration:
		return strconv.AppendInt(b, v.Nanoseconds(), 10), nil
	case *time.Duration:
		return strconv.AppendInt(b, deref(v).Nanoseconds(), 10), nil
	case encoding.BinaryMarshaler:
		m, err := v.MarshalBinary()
		if err != nil {
			return b, err
		}
		return append(b, m...), nil
	case net.IP:
		return append(b, v...), nil
	}
	return b, unwritable(a)
}

// unwritable is go-redis's error for an argument of a type it cannot write.
func unwritable(a any) error {
	return fmt.Errorf("redis: can't marshal %T (implement encoding.BinaryMarshaler)", a)
}

// deref returns what p points to, or the zero value for nil, which
// go-redis writes for a nil pointer.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, '1')
	}
	return append(b, '0')
}

// argString returns an argument as Redis reads it: as go-redis writes it.
// An argument go-redis cannot write (see checkArgs) reads as "", and the
// command fails as go-redis fails it.
func argString(a any) string {
	switch v := a.(type) { // the usual ones, without a copy
	case string:
		return v
	case []byte:
		return string(v)
	}
	b, err := appendArg(nil, a)
	if err != nil {
		return ""
	}
	return string(b)
}

// checkArgs returns go-redis's error for an argument of a command that it
// cannot write, which would fail the command when it is written: the
// command is refused before it is placed, rather than placed by a key
// that names nothing (and maybe refused as ErrCrossNode) or sent in a
// pipeline whose every command go-redis fails with it. It writes each
// argument but the usual ones as appendArg does, calling the MarshalBinary
// of one that has it, as go-redis will: one that fails fails the command
// here. (A key is placed by what MarshalBinary returns the time argString
// calls it: one that answers otherwise the next time is stored under
// another name.)
func checkArgs(args []any) error {
	var buf [64]byte // for the writing, on the stack but for a long argument
	for i, a := range args {
		switch a.(type) {
		case nil, string, *string, []byte, int, int64, float64, bool:
			continue // written as they are
		}
		if _, err := appendArg(buf[:0], a); err != nil {
			name := "the command"
			if i > 0 {
				name = strings.ToUpper(argString(args[0]))
			}
			return fmt.Errorf("federated: %s, argument %d: %w", name, i, err)
		}
	}
	return nil
}
