package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// JSONRequest is a request as the API's clients send it: body (unless
// nil) as JSON with its content type, and the bearer token (unless "").
func JSONRequest(method, url, token string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}
