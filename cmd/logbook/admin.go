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
	"github.com/logbookhq/logbook/domain/pipeline"
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
	register(adminNewCmd("config", "Set a bundle's configuration per layer and show what a run gets, and from which layer",
		"config set BUNDLE [--room R | --group G | --user U] KEY=VALUE | unset BUNDLE [--room R | --group G | --user U] KEY | show BUNDLE [--room R] [--user U]",
		"  logbook config set aws AWS_REGION=eu-west-1\n  logbook config set aws --room ops AWS_REGION=us-east-1\n  logbook config show aws --room ops --user bob"))
	bundleRegisterSubcommand(adminNewBundleInstallCmd)
	bundleRegisterSubcommand(adminNewBundleUpgradeCmd)
	for _, sub := range []struct{ use, short string }{
		{"uninstall NAME", "Uninstall a bundle, every version of it, and the images no installed bundle uses"},
		{"search REGISTRY[/PREFIX]", "List a registry's repositories under PREFIX with their tags (its catalog API)"},
		{"enable NAME VERSION", "Enable an installed version of a bundle"},
		{"disable NAME", "Stop a bundle's commands from running"},
		{"assign NAME GROUP", "Run a bundle's commands on the executors of a relay group"},
		{"unassign NAME", "Run a bundle's commands in the default relay group again"},
		{"list", "List the installed bundles and their enabled versions"},
	} {
		bundleRegisterSubcommand(func() *cobra.Command { return adminNewBundleCmd(sub.use, sub.short) })
	}
}

// adminValueOptions are the builtins' options that take a value. The
// builtins declare no options, so the chat text must say --name=VALUE;
// the CLI also accepts the usual --name VALUE and joins the two.
var adminValueOptions = []string{"email", "note", "user", "limit", "base64", "room", "group", "pipeline", "as", "timeout", "provider", "hmac-header", "name", "tz", "missed"}

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
				asJSON := slices.Contains(args, "--json")
				args = slices.DeleteFunc(args, func(a string) bool { return a == "--json" })
				return adminSendAs(cmd, adminCommandText(name, args), asJSON)
			},
		}
	}
}

func adminNewBundleCmd(use, short string) *cobra.Command {
	sub := strings.Fields(use)[0]
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short + " (sends `bundle " + sub + "` to the server)",
		Args:  cobra.ExactArgs(len(strings.Fields(use)) - 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminSendAs(cmd, adminCommandText("bundle", append([]string{sub}, args...)), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the reply as JSON")
	return cmd
}

func adminNewBundleUpgradeCmd() *cobra.Command {
	var to string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "upgrade NAME [--to TAG]",
		Short: "Upgrade a bundle installed from an image to a newer tag of its repository (sends `bundle upgrade`)",
		Long: `List the tags of the bundle's repository that are newer than the installed one
(semantic version order), pull the newest (or --to TAG), print what changes
(commands, options, rules, permissions, the image's digest), and record the
new version, enabled, pinned to the digest pulled.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			words := []string{"upgrade", args[0]}
			if to != "" {
				words = append(words, "--to="+to)
			}
			return adminSendAs(cmd, adminCommandText("bundle", words), asJSON)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "upgrade to this tag rather than the newest")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the reply as JSON")
	return cmd
}

func adminNewBundleInstallCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "install IMAGE[:TAG] | install FILE | install NAME VERSION",
		Short: "Install a bundle from an image or a config on the server (and enable it), or enable an installed version",
		Long: `With IMAGE[:TAG], the server pulls the image (with the registry logins of its
Docker config.json), reads the config the image carries at
/bundle/config.yaml without starting it, and installs it pinned to the
image's digest: its runs use repository@sha256:..., whatever the tag later
points to. With FILE (YAML or JSON, as ` + "`bundle validate`" + ` reads it) it sends the
config as ` + "`bundle install --base64=...`" + `, and the server pulls its image if the
host lacks it; with NAME VERSION, it enables a version installed before.
The config must validate; installing the same version with different
content is refused.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				return adminSend(cmd, adminCommandText("bundle", []string{"install", args[0], args[1]}))
			}
			if adminLooksLikeImage(args[0]) {
				return adminSend(cmd, adminCommandText("bundle", []string{"install", args[0]}))
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

var adminOptionName = regexp.MustCompile(`^--?[A-Za-z][A-Za-z0-9_-]*$`)

// adminQuote writes s as one pipeline word whose value is the text s
// (pipeline.QuoteWord).
func adminQuote(s string) string { return pipeline.QuoteWord(s) }

// adminSend issues text as a request and prints the reply as rendered.
func adminSend(cmd *cobra.Command, text string) error { return adminSendAs(cmd, text, false) }

// adminSendAs issues text as a request and prints the reply: its text (a
// table when the builtin answered rows), or with asJSON the value the
// builtin answered, as JSON.
func adminSendAs(cmd *cobra.Command, text string, asJSON bool) error {
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
	if asJSON {
		if err := writeJSON(cmd.OutOrStdout(), answer.Reply); err != nil {
			return err
		}
	} else if headers, rows, ok := adminRows(answer.Reply.Value); ok && !answer.Reply.Failed {
		t := newTable(cmd.OutOrStdout(), headers...)
		for _, row := range rows {
			t.Row(row...)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(cmd.OutOrStdout(), strings.TrimRight(replyText(answer.Reply), "\n"))
	}
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

// adminRows reads a builtin's value that is a list of objects with the
// same string fields (config show, secret list) as a table: the fields,
// upper-cased, in their first object's order, and a row for each object.
func adminRows(value json.RawMessage) ([]string, [][]any, bool) {
	var objects []json.RawMessage
	if json.Unmarshal(value, &objects) != nil || len(objects) == 0 {
		return nil, nil, false
	}
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(objects[0]))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		key, _ := tok.(string)
		keys = append(keys, key)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return nil, nil, false
		}
	}
	var rows [][]any
	for _, raw := range objects {
		var obj map[string]string
		if json.Unmarshal(raw, &obj) != nil || len(obj) != len(keys) || obj["body"] != "" {
			return nil, nil, false
		}
		row := make([]any, len(keys))
		for i, k := range keys {
			v, ok := obj[k]
			if !ok {
				return nil, nil, false
			}
			row[i] = v
		}
		rows = append(rows, row)
	}
	headers := make([]string, len(keys))
	for i, k := range keys {
		headers[i] = strings.ToUpper(k)
	}
	return headers, rows, true
}

// adminLooksLikeImage tells `bundle install IMAGE` from `bundle install
// FILE`: a file that exists, a path, or a name ending like a config is a
// file.
func adminLooksLikeImage(arg string) bool {
	if _, err := os.Stat(arg); err == nil {
		return false
	}
	for _, suffix := range []string{".yaml", ".yml", ".json"} {
		if strings.HasSuffix(arg, suffix) {
			return false
		}
	}
	return !strings.HasPrefix(arg, "/") && !strings.HasPrefix(arg, ".") && !strings.ContainsAny(arg, " \t\n")
}
