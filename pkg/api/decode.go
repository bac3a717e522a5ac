package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// maxBody caps every request body.
const maxBody = 64 << 10

// errBody is a request body the API refuses, with its status and code.
type errBody struct {
	status  int
	code    string
	message string
}

func (e *errBody) Error() string { return e.message }

// readBody reads a capped body that must be valid UTF-8.
func readBody(r *http.Request, w http.ResponseWriter) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &errBody{http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body over %d bytes", maxBody)}
		}
		return nil, &errBody{http.StatusBadRequest, "bad_body", "could not read request body"}
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD; refuse it instead.
	if !utf8.Valid(body) {
		return nil, &errBody{http.StatusBadRequest, "invalid_utf8", "request body is not valid UTF-8"}
	}
	return body, nil
}

// decodeJSON decodes a strict JSON object into v: the content type must
// be JSON, unknown fields, wrong types and anything after the object are
// refused.
func decodeJSON(r *http.Request, w http.ResponseWriter, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &errBody{http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json"}
	}
	body, err := readBody(r, w)
	if err != nil {
		return err
	}
	return strictUnmarshal(body, v)
}

// strictUnmarshal is the JSON half of decodeJSON, on its own for fuzzing.
func strictUnmarshal(body []byte, v any) error {
	if err := exactKeys(body, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return &errBody{http.StatusBadRequest, "invalid_json", fmt.Sprintf("field %q must be a %s", typeErr.Field, typeErr.Type)}
		case errors.Is(err, io.EOF):
			return &errBody{http.StatusBadRequest, "invalid_json", "request body is empty"}
		}
		return &errBody{http.StatusBadRequest, "invalid_json", "request body is not a valid JSON object: " + err.Error()}
	}
	if dec.More() {
		return &errBody{http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object"}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &errBody{http.StatusBadRequest, "invalid_json", "unexpected data after the JSON object"}
	}
	return nil
}

// exactKeys refuses an object key that is not spelled exactly as one of
// v's JSON field names: encoding/json would match "Comment" to "comment"
// without a word, and strict means strict. Bodies that are not objects
// are left for Decode to refuse with its own message.
func exactKeys(body []byte, v any) error {
	var keys map[string]json.RawMessage
	if json.Unmarshal(body, &keys) != nil {
		return nil
	}
	names := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	for k := range keys {
		if !names[k] {
			return &errBody{http.StatusBadRequest, "invalid_json", fmt.Sprintf("unknown field %q", k)}
		}
	}
	return nil
}
