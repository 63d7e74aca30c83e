package docker

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Credentials are the registry logins of a Docker config.json, read from
// its `auths` section as the Docker CLI writes it (`docker login`): per
// registry host, `auth` (base64 of user:password) or `username` and
// `password`, or an `identitytoken`. Credential helpers (credsStore,
// credHelpers) are not run: the server would have to execute them. The
// file is small JSON with one section Logbook reads, so it is parsed here
// rather than through the Docker CLI's module, which would bring the CLI.
type Credentials struct {
	auths map[string]Login
}

// Login is one registry's credentials. String never shows them.
type Login struct {
	Username      string
	Password      string
	IdentityToken string
}

// String hides the login: credentials never reach a log or an error.
func (l Login) String() string { return "[registry login of " + l.Username + "]" }

// GoString hides the login from %#v too.
func (l Login) GoString() string { return l.String() }

// CredentialsFile is the config.json to read: LOGBOOK_REGISTRY_CONFIG
// (the file itself, or a directory holding config.json), else
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func CredentialsFile(getenv func(string) string) string {
	if p := getenv("LOGBOOK_REGISTRY_CONFIG"); p != "" {
		if info, err := os.Stat(p); err == nil && info.IsDir() {
			return filepath.Join(p, "config.json")
		}
		return p
	}
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".docker", "config.json")
	}
	return ""
}

// LoadCredentials reads path; a file that does not exist holds no logins.
func LoadCredentials(path string) (Credentials, error) {
	if path == "" {
		return Credentials{}, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, nil
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("registry credentials %s: %w", path, err)
	}
	c, err := ParseCredentials(data)
	if err != nil {
		return Credentials{}, fmt.Errorf("registry credentials %s: %w", path, err)
	}
	return c, nil
}

// ParseCredentials reads a config.json's `auths`. Errors name the
// registry, never a credential.
func ParseCredentials(data []byte) (Credentials, error) {
	var file struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			Username      string `json:"username"`
			Password      string `json:"password"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return Credentials{}, errors.New("the file is not a Docker config.json (JSON with an auths object)")
	}
	c := Credentials{auths: map[string]Login{}}
	for host, a := range file.Auths {
		l := Login{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return Credentials{}, fmt.Errorf("the auth of %s is not base64", registryHost(host))
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return Credentials{}, fmt.Errorf("the auth of %s is not user:password", registryHost(host))
			}
			l.Username, l.Password = user, pass
		}
		c.auths[registryHost(host)] = l
	}
	return c, nil
}

// registryHost is the host[:port] a config.json key names: the Docker CLI
// writes Docker Hub as https://index.docker.io/v1/ and others bare, and
// some tools write a scheme or a path.
func registryHost(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key, _, _ = strings.Cut(key, "/")
	if key == "index.docker.io" || key == "registry-1.docker.io" {
		return "docker.io"
	}
	return key
}

// For is the login for a registry host, if any.
func (c Credentials) For(host string) (Login, bool) {
	l, ok := c.auths[registryHost(host)]
	return l, ok
}
