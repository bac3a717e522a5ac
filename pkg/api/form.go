package api

import (
	"net/http"
	"net/url"
)

// formComment takes the comment of an urlencoded form body; the body was
// read under the same cap and UTF-8 check as JSON.
func formComment(body []byte) (string, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return "", &errBody{http.StatusBadRequest, "invalid_form", "form body is not valid urlencoded data"}
	}
	for k := range vals {
		if k != "comment" {
			return "", &errBody{http.StatusBadRequest, "invalid_form", "unknown form field " + k}
		}
	}
	if len(vals["comment"]) > 1 {
		return "", &errBody{http.StatusBadRequest, "invalid_form", "comment given more than once"}
	}
	return vals.Get("comment"), nil
}
