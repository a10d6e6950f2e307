package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// numberArgs lets a negative number stand as a positional argument, as in
// redfed record web1 temp.delta -3.5, which pflag would read as the
// shorthand flags '3', '.' and '5' ("unknown shorthand flag"). When args
// hold such a number and no "--", it returns them reordered: the command's
// names, its flags with their values, "--", then the positional arguments
// in their order. Otherwise it returns args as they are. A number given
// as a flag's value (--from -3.5) is the flag's, as pflag reads it.
//
// No flag of redfed has a digit or '.' for a shorthand, so an argument
// that starts with '-' and then one of those is never a flag.
func numberArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	depth := 0
	for c := cmd; c.HasParent(); c = c.Parent() {
		depth++
	}
	var flagArgs, positional []string
	negative := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args // the caller already marked where flags end
		case isNegativeNumber(a):
			negative = true
			positional = append(positional, a)
		case strings.HasPrefix(a, "--"):
			flagArgs = append(flagArgs, a)
			name, _, withValue := strings.Cut(a[2:], "=")
			if !withValue && takesValue(lookupFlag(cmd, name, "")) && i+1 < len(args) {
				i++
				flagArgs = append(flagArgs, args[i])
			}
		case len(a) > 1 && a[0] == '-':
			flagArgs = append(flagArgs, a)
			if len(a) == 2 && takesValue(lookupFlag(cmd, "", a[1:])) && i+1 < len(args) {
				i++
				flagArgs = append(flagArgs, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	if !negative || len(positional) < depth {
		return args
	}
	out := make([]string, 0, len(args)+1)
	out = append(out, positional[:depth]...)
	out = append(out, flagArgs...)
	out = append(out, "--")
	return append(out, positional[depth:]...)
}

// isNegativeNumber reports whether a starts like a negative number or
// duration ('-' then a digit or '.'), or is a negative infinity or NaN.
func isNegativeNumber(a string) bool {
	if len(a) > 1 && a[0] == '-' && (a[1] == '.' || '0' <= a[1] && a[1] <= '9') {
		return true
	}
	// -Inf and -NaN too, however written: the value's check refuses them
	// by name, where a flag's parser would call them an unknown flag.
	switch strings.ToLower(a) {
	case "-inf", "-infinity", "-nan":
		return true
	}
	return false
}

// lookupFlag finds a flag of cmd, its own or one it inherits, by name or by
// shorthand; nil when there is none.
func lookupFlag(cmd *cobra.Command, name, shorthand string) *pflag.Flag {
	for c := cmd; c != nil; c = c.Parent() {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			var f *pflag.Flag
			if name != "" {
				f = fs.Lookup(name)
			} else {
				f = fs.ShorthandLookup(shorthand)
			}
			if f != nil {
				return f
			}
		}
	}
	return nil
}

// takesValue reports whether f reads the next argument as its value when
// written without "=": a flag with no value of its own, such as a bool's.
// An unknown flag takes none; pflag reports it.
func takesValue(f *pflag.Flag) bool {
	return f != nil && f.NoOptDefVal == ""
}
