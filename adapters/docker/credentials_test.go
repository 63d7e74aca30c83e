package docker

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseCredentialsReadsTheAuthsAsDockerWritesThem(t *testing.T) {
	t.Parallel()
	c, err := ParseCredentials([]byte(`{"auths":{
		"127.0.0.1:5000": {"auth": "dXNlcjpwQHNzOndvcmQ="},
		"https://index.docker.io/v1/": {"username": "hub", "password": "hubpass"},
		"https://registry.example/v2/": {"auth": "YTpi"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"127.0.0.1:5000": "user p@ss:word", "docker.io": "hub hubpass", "registry.example": "a b"} {
		l, ok := c.For(host)
		if !ok || l.Username+" "+l.Password != want {
			t.Errorf("For(%s) = %v, %v", host, ok, l.Username)
		}
	}
	if _, ok := c.For("other.example"); ok {
		t.Error("a login for a registry the file does not name")
	}
}

func TestCredentialErrorsAndPrintsNeverShowThem(t *testing.T) {
	t.Parallel()
	for _, file := range []string{`{"auths":{"r.example":{"auth":"not base64 s3cret"}}}`, `{"auths":{"r.example":{"auth":"czNjcmV0"}}}`, `{"auths": s3cret}`} {
		_, err := ParseCredentials([]byte(file))
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "czNjcmV0") {
			t.Errorf("ParseCredentials(%s) = %v", file, err)
		}
	}
	l := Login{Username: "u", Password: "s3cret"}
	if s := fmt.Sprintf("%v %+v %#v %s", l, l, l, l); strings.Contains(s, "s3cret") {
		t.Errorf("a login printed its password: %s", s)
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCredentials(data)
		if err != nil {
			return
		}
		for host, l := range c.auths {
			if got, ok := c.For(host); !ok || got != l {
				t.Fatalf("For(%q) does not find the login stored under it", host)
			}
		}
	})
}
