package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

// FuzzCallInput: whatever a caller sends, the input recorded for the
// first stage is JSON that keeps the raw body exactly, never carries the
// credential headers, and a body that parses as JSON is the body.
func FuzzCallInput(f *testing.F) {
	f.Add([]byte(`{"ref": "refs/heads/main"}`), "application/json")
	f.Add([]byte("payload=%7B%22a%22%3A1%7D"), "application/x-www-form-urlencoded")
	f.Add([]byte("\xff\xfe not text"), "application/octet-stream")
	f.Add([]byte(""), "")
	const credential = "cred-7f3a91c4"
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := httptest.NewRequest("POST", "/v1/triggers/t?token="+credential+"&x=1", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Authorization", "Bearer "+credential)
		r.Header.Set("X-Logbook-Token", credential)
		input, err := httpapi.CallInput(r, body)
		if err != nil {
			return // a body that says it is JSON or a form and is not: refused with a 400
		}
		var got struct {
			Headers       map[string]string `json:"headers"`
			Query         map[string]string `json:"query"`
			Body          json.RawMessage   `json:"body"`
			RawBody       *string           `json:"raw_body"`
			RawBodyBase64 []byte            `json:"raw_body_base64"`
		}
		if err := json.Unmarshal(input, &got); err != nil {
			t.Fatalf("the input is not JSON: %v", err)
		}
		if bytes.Contains(input, []byte(credential)) && !bytes.Contains(body, []byte(credential)) {
			t.Fatalf("a credential reached the input: %s", input)
		}
		switch {
		case utf8.Valid(body):
			if got.RawBody == nil || *got.RawBody != string(body) {
				t.Fatalf("raw_body %v, want %q", got.RawBody, body)
			}
		case !bytes.Equal(got.RawBodyBase64, body):
			t.Fatalf("raw_body_base64 %q, want %q", got.RawBodyBase64, body)
		}
		if json.Valid(body) && len(bytes.TrimSpace(body)) > 0 {
			var want, have any
			_ = json.Unmarshal(body, &want)
			_ = json.Unmarshal(got.Body, &have)
			if !jsonEqual(want, have) {
				t.Fatalf("body %s, want %s", got.Body, body)
			}
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
