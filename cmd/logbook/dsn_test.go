package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// secretURLs are database URLs each holding secrets in one of the forms
// people write them; none of the secret words may ever be printed. Port 1
// on loopback refuses at once, so opening fails fast.
var secretURLs = []struct {
	name    string
	url     string
	secrets []string
}{
	{"a password holding '@'", "postgres://postgres:p@ssTAILSECRET@127.0.0.1:1/db?sslmode=disable", []string{"TAILSECRET", "p@ss"}},
	{"a password in the query", "postgres://postgres@127.0.0.1:1/db?sslmode=disable&password=QUERYSECRET", []string{"QUERYSECRET"}},
	{"an sslpassword in the query", "postgresql://postgres@127.0.0.1:1/db?sslpassword=SSLSECRET", []string{"SSLSECRET"}},
	{"a percent-encoded password", "postgres://postgres:ENC%40SECRET@127.0.0.1:1/db", []string{"ENC%40SECRET", "ENC@SECRET"}},
	{"a URL that does not parse (a space)", "postgres://postgres:pw SPACESECRET@127.0.0.1:1/db", []string{"SPACESECRET"}},
	{"a URL that does not parse (a slash in the password)", "postgres://postgres:pa/SLASHSECRET@127.0.0.1:1/db", []string{"SLASHSECRET", "pa/"}},
	{"a URL that does not parse (a bad escape)", "postgres://postgres:%zzESCSECRET@127.0.0.1:1/db", []string{"ESCSECRET"}},
}

func assertNoSecret(t *testing.T, where, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s shows the secret %q: %s", where, s, text)
		}
	}
}

func TestRedactURLHidesEverySecretForm(t *testing.T) {
	t.Parallel()
	for _, c := range secretURLs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := redactURL(c.url)
			assertNoSecret(t, "redactURL", got, c.secrets)
			if !strings.Contains(got, "xxxxx") && got != unparsedURL {
				t.Errorf("redactURL = %q, want the secret replaced by xxxxx", got)
			}
		})
	}
	if got := redactURL("postgres://alice@db.example/logbook?sslmode=require"); got != "postgres://alice@db.example/logbook?sslmode=require" {
		t.Errorf("a URL without secrets changed: %q", got)
	}
	if got := redactURL("postgres://alice:pw@db.example/logbook"); got != "postgres://alice:xxxxx@db.example/logbook" {
		t.Errorf("redactURL = %q, want the host and user kept", got)
	}
}

// Every command that opens the store prints what went wrong without the
// URL's secrets: the configuration check, audit verify, events tail and
// projections.
func TestCommandsNeverPrintADatabaseSecret(t *testing.T) {
	commands := [][]string{{"audit", "verify"}, {"events", "tail"}, {"projections", "status"}, {"projections", "rebuild"}}
	for _, c := range secretURLs {
		for _, args := range commands {
			t.Run(c.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				t.Setenv("LOGBOOK_DATABASE_URL", "")
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				defer cancel()
				var out, errOut bytes.Buffer
				root := newRootCmd()
				root.SetArgs(append(args, "--database", c.url))
				root.SetOut(&out)
				root.SetErr(&errOut)
				err := root.ExecuteContext(ctx)
				if err == nil {
					t.Fatal("opening a database on port 1 succeeded")
				}
				assertNoSecret(t, "the error", err.Error(), c.secrets)
				assertNoSecret(t, "stdout", out.String(), c.secrets)
				assertNoSecret(t, "stderr", errOut.String(), c.secrets)
			})
		}
		t.Run(c.name+"/configuration", func(t *testing.T) {
			t.Setenv("LOGBOOK_DATABASE_URL", c.url)
			_, err := loadConfig()
			if err != nil {
				assertNoSecret(t, "the configuration error", err.Error(), c.secrets)
			}
		})
	}
}

// syncBuffer is a log sink the retry loop writes while the test reads.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve retries an unreachable database, logging each failure: no log line
// holds a secret, and a URL that does not parse is not retried at all.
func TestServeRetryLogNeverPrintsADatabaseSecret(t *testing.T) {
	t.Parallel()
	for _, c := range secretURLs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			logs := &syncBuffer{wrote: make(chan struct{}, 1)}
			log := zerolog.New(logs)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, _, err := openStoreWithRetry(ctx, log, c.url, t.TempDir())
				done <- err
			}()
			var err error
			select {
			case <-logs.wrote: // one failed attempt was logged
				cancel()
				err = <-done
			case err = <-done: // refused without retrying
				cancel()
				if err == nil {
					t.Fatal("opening a database on port 1 succeeded")
				}
			}
			assertNoSecret(t, "the log", logs.String(), c.secrets)
			if err != nil {
				assertNoSecret(t, "the error", err.Error(), c.secrets)
			}
		})
	}
}
