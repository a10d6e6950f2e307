package dashboard

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestShownMarksWhatShowsNothing(t *testing.T) {
	for in, want := range map[string]string{
		"web1":                  "web1",
		"hôte":                  "hôte",
		"web1\u034f":            "web1⟨U+034F⟩",
		"web1\u3164":            "web1⟨U+3164⟩",
		"\u115fweb1\u2800":      "⟨U+115F⟩web1⟨U+2800⟩",
		"web1\ufe0f":            "web1⟨U+FE0F⟩",
		"\ufe0eweb":             "⟨U+FE0E⟩web",
		"\u2764\ufe0f":          "\u2764\ufe0f",
		"\u2764\ufe0f\ufe0f":    "\u2764\ufe0f⟨U+FE0F⟩",
		"\u3164\ufe0f":          "⟨U+3164⟩⟨U+FE0F⟩",
		"葛\U000E0100":           "葛\U000E0100",
		"a\U000E0100":           "a⟨U+E0100⟩",
		"x{v=\"\u2764\ufe0f\"}": "x{v=\"\u2764\ufe0f\"}",
	} {
		assert.Equal(t, want, shown(in), "%+q", in)
	}
}
