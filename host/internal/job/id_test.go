package job

import (
	"strings"
	"testing"
)

const (
	id1 = "0123456789abcdef01234567"
	id3 = id1 + "@1700000000"
)

func TestValidID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"Plain", id1, true},
		{"AllDigits", "012345678901234567890123", true},
		{"AllLetters", "abcdefabcdefabcdefabcdef", true},
		{"Periodic", id3, true},
		{"PeriodicZero", id1 + "@0", true},
		{"PeriodicLeadingZero", id1 + "@01", false},
		{"PeriodicMaxInt64", id1 + "@9223372036854775807", true},
		{"Empty", "", false},
		{"Dot", ".", false},
		{"DotDot", "..", false},
		{"Traversal", "../../etc/passwd", false},
		{"TraversalToHexName", "../" + id1, false},
		{"Slash", "a/b", false},
		{"Backslash", `0123456789abcdef0123456\`, false},
		{"UpperHex", strings.ToUpper("abcdefabcdefabcdefabcdef"), false},
		{"MixedCase", "0123456789ABCDEF01234567", false},
		{"NotHex", "0123456789abcdef0123456g", false},
		{"TooShort", id1[:23], false},
		{"TooLong", id1 + "8", false},
		{"LogSuffix", id1 + ".log", false},
		{"TrailingNewline", id1 + "\n", false},
		{"TrailingNUL", id1 + "\x00", false},
		{"SlashAfter", id1 + "/x", false},
		{"AtOnly", id1 + "@", false},
		{"AtLetters", id1 + "@abc", false},
		{"AtNegative", id1 + "@-1", false},
		{"AtPlus", id1 + "@+1", false},
		{"AtSpace", id1 + "@ 1", false},
		{"AtFraction", id1 + "@1.5", false},
		{"AtTwice", id1 + "@1@2", false},
		{"AtOverflow", id1 + "@9223372036854775808", false},
		{"AtTooManyDigits", id1 + "@00000000000000000001", false},
		{"AtFullWidthDigit", id1 + "@１", false},
		{"PolicyIsNotHex", "policy@1700000000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ValidID(tt.id); got != tt.want {
				t.Fatalf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}
