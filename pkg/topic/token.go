package topic

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// NewToken returns a fresh secret for a topic and the hash to store. The
// secret has 256 bits of entropy, so a fast hash is enough: there is nothing
// to brute-force that a slow hash would protect.
func NewToken() (token string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux and panics otherwise
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is the stored form of a token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Authorizer decides whether a bearer token may change a topic: the topic's
// own token or the operator's admin token.
type Authorizer struct {
	adminHash []byte // nil: no admin token configured
}

// NewAuthorizer returns an Authorizer; an empty admin token disables admin access.
func NewAuthorizer(adminToken string) Authorizer {
	if adminToken == "" {
		return Authorizer{}
	}
	return Authorizer{adminHash: HashToken(adminToken)}
}

// Check reports nil when token may change the topic whose stored hash is
// topicHash. Comparisons are on hashes, in constant time.
func (a Authorizer) Check(token string, topicHash []byte) error {
	if token == "" {
		return ErrUnauthorized
	}
	h := HashToken(token)
	if subtle.ConstantTimeCompare(h, topicHash) == 1 {
		return nil
	}
	if a.IsAdmin(token) {
		return nil
	}
	return ErrForbidden
}

// IsAdmin reports whether token is the admin token.
func (a Authorizer) IsAdmin(token string) bool {
	return a.adminHash != nil && subtle.ConstantTimeCompare(HashToken(token), a.adminHash) == 1
}
