package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// A web session lives in the store's database: the server restarted on
// the same store keeps the person logged in, with the console's history.
func TestAWebSessionOutlivesARestartOfTheServer(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			env := append(store(t), "LOGBOOK_RUNTIME=process")
			s := startServer(t, env...)
			s.waitReady(t)
			token := s.token(t)

			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			base := "http://" + s.addr
			resp, err := client.PostForm(base+"/login", url.Values{"token": {token}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("the login answered %s", resp.Status)
			}
			console := getPage(t, client, base+"/console")
			csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(console)
			if csrf == nil {
				t.Fatalf("the console has no CSRF token:\n%s", console)
			}
			req, _ := http.NewRequest(http.MethodPost, base+"/console", strings.NewReader(url.Values{"text": {"!echo before the restart"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			req.Header.Set("X-CSRF-Token", csrf[1])
			resp, err = client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("the console's POST answered %s", resp.Status)
			}
			if err := s.stop(t, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}

			restarted := startServer(t, env...)
			restarted.waitReady(t)
			from, _ := url.Parse(base)
			to, _ := url.Parse("http://" + restarted.addr)
			jar.SetCookies(to, jar.Cookies(from))
			console = getPage(t, client, to.String()+"/console")
			if !strings.Contains(console, "before the restart") {
				t.Fatalf("the restarted server's console does not show the command typed before:\n%s", console)
			}
		})
	}
}

// getPage reads a page that must answer 200.
func getPage(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s answered %s (Location %q)", url, resp.Status, resp.Header.Get("Location"))
	}
	return string(body)
}
