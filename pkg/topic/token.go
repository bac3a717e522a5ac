package topic

import (
	"crypto/hmac"
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

// The length an idempotency key must have, in characters of
// [A-Za-z0-9_-]. Sixteen of them carry 96 bits: enough, when they are
// random, that nobody can guess another's key (which would give them the
// topic's token, see KeyToken).
const (
	MinKeyLen = 16
	MaxKeyLen = 128
)

// ValidKey reports whether key is an acceptable idempotency key: MinKeyLen
// to MaxKeyLen characters of [A-Za-z0-9_-] (a UUID, base64url, hex).
func ValidKey(key string) bool {
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// tokenLabel is what a key-derived token is the MAC of; a new derivation
// gets a new label.
const tokenLabel = "bbs topic token v1"

// KeyToken returns the token of a topic created with an idempotency key,
// and the hash to store. The token is HMAC-SHA256 keyed by the key over a
// fixed label, so a retry with the same key gets the same token back
// although the server stores neither the token nor the key, only hashes
// of each (HashToken, KeyHash), from which the token cannot be derived.
func KeyToken(key string) (token string, hash []byte) {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(tokenLabel))
	token = base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	return token, HashToken(token)
}

// KeyHash is the stored form of an idempotency key: what the database's
// unique index on it holds.
func KeyHash(key string) []byte {
	h := sha256.Sum256([]byte(key))
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
