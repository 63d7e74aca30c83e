package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logbookhq/logbook/domain/dispatch"
)

// The administration commands mirror the chat builtins: each sends the
// same command text through POST /v1/requests, as `logbook say` does, and
// prints the reply. Exit 0 when the command completed, 1 when it failed or
// was denied, 2 when it could not be sent.

func init() {
	register(adminNewCmd("user", "Create, link, disable and list users; issue API tokens",
		"user create NAME [--email E] | link NAME PROVIDER HANDLE | unlink NAME PROVIDER | disable NAME | enable NAME | token NAME [--note N] | list",
		"  logbook user create bob --email bob@example.com\n  logbook user token bob"))
	register(adminNewCmd("group", "Create groups, change their members, grant them roles",
		"group create NAME | add GROUP USER | remove GROUP USER | grant GROUP ROLE | revoke GROUP ROLE | list [GROUP]",
		"  logbook group add ops bob\n  logbook group grant ops deployers"))
	register(adminNewCmd("role", "Create roles and grant them permissions",
		"role create NAME | grant ROLE PERMISSION | revoke ROLE PERMISSION | list [ROLE]",
		"  logbook role grant deployers site:deploy"))
	register(adminNewCmd("permission", "Create site permissions and list every permission",
		"permission create site:NAME | list", "  logbook permission create site:deploy"))
	register(adminNewCmd("alias", "Name a pipeline: yours, or with --site one for everyone",
		"alias create [--site] NAME 'PIPELINE' | delete [--site] NAME | list",
		"  logbook alias create st 'toolbox:date --format 15:04'"))
	bundleRegisterSubcommand(adminNewBundleInstallCmd)
	for _, sub := range []struct{ use, short string }{
		{"enable NAME VERSION", "Enable an installed version of a bundle"},
		{"disable NAME", "Stop a bundle's commands from running"},
		{"list", "List the installed bundles and their enabled versions"},
	} {
		bundleRegisterSubcommand(func() *cobra.Command { return adminNewBundleCmd(sub.use, sub.short) })
	}
}

// adminValueOptions are the builtins' options that take a value. The
// builtins declare no options, so the chat text must say --name=VALUE;
// the CLI also accepts the usual --name VALUE and joins the two.
var adminValueOptions = []string{"email", "note", "user", "limit", "base64"}

// adminNewCmd mirrors one builtin. Its arguments pass through unparsed
// (flags included), so the CLI and chat accept the same words.
func adminNewCmd(name, short, usage, example string) func() *cobra.Command {
	return func() *cobra.Command {
		return &cobra.Command{
			Use:                name + " SUBCOMMAND [ARGS...]",
			Short:              short,
			Long:               "Send `" + name + " ...` to the server at LOGBOOK_URL as LOGBOOK_TOKEN's user and print the reply.\n\nUsage: " + usage,
			Example:            example,
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
					return cmd.Help()
				}
				return adminSend(cmd, adminCommandText(name, args))
			},
		}
	}
}

func adminNewBundleCmd(use, short string) *cobra.Command {
	sub := strings.Fields(use)[0]
	return &cobra.Command{
		Use:   use,
		Short: short + " (sends `bundle " + sub + "` to the server)",
		Args:  cobra.ExactArgs(len(strings.Fields(use)) - 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminSend(cmd, adminCommandText("bundle", append([]string{sub}, args...)))
		},
	}
}

func adminNewBundleInstallCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "install FILE | install NAME VERSION",
		Short: "Install a bundle config on the server (and enable it), or enable an installed version",
		Long: `Read FILE (YAML or JSON, as ` + "`bundle validate`" + ` reads it) and send it to the server
as ` + "`bundle install --base64=...`" + `; with NAME VERSION, enable a version installed
before. The config must validate; installing the same version with a
different config is refused.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				return adminSend(cmd, adminCommandText("bundle", []string{"install", args[0], args[1]}))
			}
			config, err := os.ReadFile(args[0])
			if err != nil {
				return exitWith(2, "%v", err)
			}
			return adminSend(cmd, "bundle install --base64="+adminQuote(base64.StdEncoding.EncodeToString(config)))
		},
	}
}

// adminCommandText writes the builtin's command text from CLI words:
// each argument quoted as the pipeline language needs, "--name VALUE"
// joined into "--name=VALUE".
func adminCommandText(name string, args []string) string {
	words := []string{name}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if flag, value, hasValue := strings.Cut(arg, "="); strings.HasPrefix(arg, "-") && adminOptionName.MatchString(flag) {
			if !hasValue && slices.Contains(adminValueOptions, strings.TrimLeft(flag, "-")) && i+1 < len(args) {
				value, hasValue = args[i+1], true
				i++
			}
			if hasValue {
				words = append(words, flag+"="+adminQuote(value))
			} else {
				words = append(words, flag)
			}
			continue
		}
		words = append(words, adminQuote(arg))
	}
	return strings.Join(words, " ")
}

var (
	adminOptionName = regexp.MustCompile(`^--?[A-Za-z][A-Za-z0-9_-]*$`)
	adminBareWord   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:@/+-]*$`)
)

// adminQuote writes s as one pipeline word whose value is the text s: bare
// when it is a plain word that reads as text, else double-quoted with \,
// " and $ escaped (so no ${...} interpolates).
func adminQuote(s string) string {
	if adminBareWord.MatchString(s) && s != "true" && s != "false" {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`)
	return `"` + r.Replace(s) + `"`
}

// adminSend issues text as a request and prints the reply as rendered.
func adminSend(cmd *cobra.Command, text string) error {
	var answer struct {
		RequestID string          `json:"request_id"`
		Reply     *dispatch.Reply `json:"reply"`
	}
	if err := postJSON(cmd, "/v1/requests?wait=1", map[string]string{"text": text}, &answer); err != nil {
		return err
	}
	if answer.Reply == nil {
		fmt.Fprintf(cmd.OutOrStdout(), "request %s is still running; see `logbook history`\n", answer.RequestID)
		return nil
	}
	fmt.Fprintln(cmd.OutOrStdout(), strings.TrimRight(replyText(answer.Reply), "\n"))
	if answer.Reply.Failed {
		return exitWith(1, "")
	}
	return nil
}

// postJSON sends body to the server as JSON with LOGBOOK_TOKEN and decodes
// a 2xx answer into out; anything else is exit 2 with the server's error.
func postJSON(cmd *cobra.Command, path string, body, out any) error {
	cc, err := loadClientConfig()
	if err != nil {
		return exitWith(2, "%v", err)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, cc.URL+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cc.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 6 * time.Minute}).Do(req)
	if err != nil {
		return exitWith(2, "cannot reach Logbook at %s (LOGBOOK_URL): %v", cc.URL, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(answer, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("the server answered %s: %.200s", resp.Status, answer)
		}
		return exitWith(2, "%s", e.Error)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return exitWith(2, "the server answered %s with something that is not the expected JSON: %.200s", resp.Status, answer)
	}
	return nil
}
