package topic

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxCommentRunes is the longest comment accepted, in Unicode code points.
const MaxCommentRunes = 2000

// NormalizeComment trims surrounding white space, folds "\r\n" to "\n" and
// checks the result: 1..MaxCommentRunes code points of valid UTF-8 with no
// control characters but "\n" and "\t". Normalising first means the limit
// and the stored text agree with what the author sees.
func NormalizeComment(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalid)
	}
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	n := 0
	for _, r := range s {
		n++
		if unicode.Is(unicode.Cc, r) && r != '\n' && r != '\t' {
			return "", fmt.Errorf("%w: control character %U not allowed", ErrInvalid, r)
		}
	}
	switch {
	case n == 0:
		return "", fmt.Errorf("%w: comment is empty", ErrInvalid)
	case n > MaxCommentRunes:
		return "", fmt.Errorf("%w: comment is %d characters, at most %d allowed", ErrInvalid, n, MaxCommentRunes)
	}
	return s, nil
}
