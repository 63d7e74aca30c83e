package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/adapters/sqlstore"
	"github.com/logbookhq/logbook/adapters/transparency"
	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/domain/eventstore"
	"github.com/logbookhq/logbook/projections/merkletree"
)

func init() { register(newAuditCmd) }

func newAuditCmd() *cobra.Command {
	audit := &cobra.Command{Use: "audit", Short: "Check the event log's tamper evidence: hash chain, Merkle tree, signed checkpoints, evidence bundles"}
	audit.AddCommand(newAuditVerifyCmd(), newAuditCheckpointCmd(), newAuditKeyCmd(), newAuditProveCmd(), newAuditRebuildTreeCmd())
	return audit
}

// policyFlags are the keys a check trusts: the log's and K of N witnesses'.
type policyFlags struct {
	key       string
	witnesses []string
	required  int
}

func (p *policyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.key, "key", "", "the log's verifier key (name+hash+key, as logbook audit key prints it)")
	cmd.Flags().StringArrayVar(&p.witnesses, "witness", nil, "a witness's verifier key (repeat for each witness)")
	cmd.Flags().IntVar(&p.required, "witnesses-required", -1, "how many of the --witness keys must have cosigned (default: all of them)")
}

func (p *policyFlags) policy() (auditlog.Policy, error) {
	required := p.required
	if required < 0 {
		required = len(p.witnesses)
	}
	policy, err := auditlog.NewPolicy(p.key, p.witnesses, required)
	if err != nil {
		return policy, exitWith(2, "%v", err)
	}
	return policy, nil
}

func newAuditVerifyCmd() *cobra.Command {
	var (
		asJSON     bool
		database   string
		evidence   string
		checkpoint string
		keys       policyFlags
	)
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Walk the hash chain and the Merkle tree, and check every stored checkpoint (and --checkpoint FILE) against them; or check an evidence bundle offline (--evidence FILE)",
		Long: `Without --evidence, walks the log: the hash chain (exit 1 naming the first position altered, deleted,
inserted or reordered), then the Merkle tree recomputed from the events against every stored signed
checkpoint and, with --checkpoint FILE --key VERIFIER, against a checkpoint kept outside the database
(exit 1 naming the checkpoint the log contradicts: a rewrite from some position on, or a truncation).
Each good checkpoint is also checked against the stored tree with a consistency proof.

With --evidence FILE --key VERIFIER [--witness VERIFIER ...], checks an evidence bundle (logbook audit
prove) with no database: exit 1 naming what in it was changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if evidence != "" {
				return verifyEvidence(cmd, evidence, keys, asJSON)
			}
			return verifyLog(cmd, database, checkpoint, keys, asJSON)
		},
	}
	verify.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	verify.Flags().StringVar(&database, "database", "", "database URL (default LOGBOOK_DATABASE_URL, else the embedded SQLite file)")
	verify.Flags().StringVar(&evidence, "evidence", "", "check this evidence bundle offline instead of the database")
	verify.Flags().StringVar(&checkpoint, "checkpoint", "", "also check the log against this signed checkpoint (needs --key)")
	keys.register(verify)
	return verify
}

// verifyReport is audit verify's JSON.
type verifyReport struct {
	eventstore.VerifyReport
	Store        string              `json:"store"`
	Seconds      float64             `json:"seconds"`
	EventsPerSec float64             `json:"events_per_s"`
	Tree         auditlog.TreeReport `json:"tree"`
}

func verifyLog(cmd *cobra.Command, database, checkpointFile string, keys policyFlags, asJSON bool) error {
	ctx := cmd.Context()
	var external *auditlog.Opened
	var policy *auditlog.Policy
	if keys.key != "" {
		p, err := keys.policy()
		if err != nil {
			return err
		}
		policy = &p
	}
	if checkpointFile != "" {
		if policy == nil {
			return exitWith(2, "--checkpoint needs --key: the log's verifier key, to check the checkpoint's signature")
		}
		raw, err := os.ReadFile(checkpointFile)
		if err != nil {
			return exitWith(2, "--checkpoint: %v", err)
		}
		o, err := auditlog.OpenCheckpoint(raw, *policy)
		if err != nil {
			return exitWith(1, "%s: %v", checkpointFile, err)
		}
		external = &o
	}
	store, name, _, err := openConfiguredStore(ctx, database)
	if err != nil {
		return err
	}
	defer store.Close()

	head, _, err := store.Head(ctx)
	if err != nil {
		return err
	}
	checks, roots, err := checkpointChecks(ctx, store, policy)
	if err != nil {
		return err
	}
	if external != nil {
		checks = append(checks, auditlog.CheckpointCheck{Source: checkpointFile, Size: external.Size, Root: external.Root.String()})
		roots = append(roots, external.Root)
	}
	storedSize, err := store.TreeSize(ctx)
	if err != nil {
		return err
	}
	treeCheck := auditlog.NewTreeCheck(storedSize, checks, roots)
	progress, done := progressBar(head, "verifying", "events", asJSON)
	start := time.Now()
	report, err := eventstore.VerifyEach(ctx, store, progress, treeCheck.Visit)
	done()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	tree := treeCheck.Finish(ctx, store, report.OK)
	out := cmd.OutOrStdout()
	if asJSON {
		if err := writeJSON(out, verifyReport{report, name, elapsed.Seconds(), perSecond(report.Checked, elapsed), tree}); err != nil {
			return err
		}
	} else {
		if report.OK {
			fmt.Fprintf(out, "ok: %d events checked in %s (%.0f events/s); head position %d, hash %s\n",
				report.Checked, elapsed.Round(time.Millisecond), perSecond(report.Checked, elapsed), report.Head, report.HeadHash)
		} else {
			fmt.Fprintf(out, "chain broken at position %d: %s (%d events before it check out)\n", report.FirstBad, report.Problem, report.Checked)
		}
		if tree.StoredTreeProblem != "" {
			fmt.Fprintf(out, "stored tree: %s\n", tree.StoredTreeProblem)
		}
		good := 0
		for _, c := range tree.Checkpoints {
			if c.OK {
				good++
				continue
			}
			fmt.Fprintf(out, "contradicts %s (root %s): %s\n", c.Name(), c.Root, c.Problem)
		}
		fmt.Fprintf(out, "tree: %d leaves, root %s; %d of %d checkpoints consistent with the log\n", tree.Size, orNone(tree.Root), good, len(tree.Checkpoints))
	}
	if !report.OK || !tree.OK {
		return exitWith(1, "")
	}
	return nil
}

// checkpointChecks lists the stored checkpoints to check: each note must
// parse (and, with a policy, verify) and say what its row says.
func checkpointChecks(ctx context.Context, store *sqlstore.Store, policy *auditlog.Policy) ([]auditlog.CheckpointCheck, []tlog.Hash, error) {
	stored, err := store.Checkpoints(ctx, 0)
	if err != nil {
		return nil, nil, err
	}
	var (
		checks []auditlog.CheckpointCheck
		roots  []tlog.Hash
	)
	for _, c := range stored {
		signedAt := c.CreatedAt
		check := auditlog.CheckpointCheck{Source: "stored", Size: c.Size, Root: c.Root.String(), SignedAt: &signedAt}
		var body auditlog.Checkpoint
		if policy != nil {
			p := *policy
			p.Required = 0 // a stored checkpoint may be newer than its cosignatures
			o, err := auditlog.OpenCheckpoint(c.Cosigned(), p)
			body = o.Checkpoint
			if err != nil {
				check.Problem = err.Error()
			}
		} else if n := strings.LastIndex(string(c.Note), "\n\n"); n >= 0 {
			body, err = auditlog.ParseCheckpointBody(c.Note[:n+1])
			if err != nil {
				check.Problem = err.Error()
			}
		}
		if check.Problem == "" && (body.Size != c.Size || body.Root != c.Root) {
			check.Problem = fmt.Sprintf("the signed note says size %d root %s, but its row says size %d root %s: the row was changed", body.Size, body.Root, c.Size, c.Root)
		}
		checks = append(checks, check)
		roots = append(roots, body.Root)
	}
	return checks, roots, nil
}

func verifyEvidence(cmd *cobra.Command, path string, keys policyFlags, asJSON bool) error {
	if keys.key == "" {
		return exitWith(2, "--evidence needs --key: the log's verifier key")
	}
	policy, err := keys.policy()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return exitWith(2, "--evidence: %v", err)
	}
	start := time.Now()
	report, err := auditlog.VerifyBundle(raw, policy)
	elapsed := time.Since(start)
	out := cmd.OutOrStdout()
	if err != nil {
		if asJSON {
			_ = writeJSON(out, map[string]any{"ok": false, "problem": err.Error()})
		}
		return exitWith(1, "%s does not verify: %v", path, err)
	}
	if asJSON {
		return writeJSON(out, struct {
			OK bool `json:"ok"`
			auditlog.BundleReport
			Seconds float64 `json:"seconds"`
		}{true, report, elapsed.Seconds()})
	}
	t := newTable(out, "REQUEST", "EVENTS", "STREAMS", "CHECKPOINT", "ROOT", "COSIGNED BY")
	t.Row(report.RequestID, report.Events, len(report.Streams), report.Checkpoint.Size, report.Checkpoint.Root, orNone(strings.Join(report.Cosigners, ", ")))
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "ok: every event is in the tree of the checkpoint signed by %s, checked in %s\n", report.Checkpoint.Origin, elapsed.Round(time.Microsecond))
	return nil
}

func newAuditCheckpointCmd() *cobra.Command {
	var (
		asJSON   bool
		database string
	)
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Print the newest signed checkpoint with its cosignatures (a C2SP signed note; keep it outside the database)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, _, _, err := openConfiguredStore(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer store.Close()
			latest, err := store.Checkpoints(cmd.Context(), 1)
			if err != nil {
				return err
			}
			if len(latest) == 0 {
				return exitWith(1, "no checkpoint has been signed yet: the server signs one every LOGBOOK_CHECKPOINT_EVERY events or LOGBOOK_CHECKPOINT_INTERVAL, with LOGBOOK_SIGNING_KEY_FILE")
			}
			c := latest[0]
			out := cmd.OutOrStdout()
			if !asJSON {
				_, err := out.Write(c.Cosigned())
				return err
			}
			witnesses := make([]string, 0, len(c.Cosignatures))
			for w := range c.Cosignatures {
				witnesses = append(witnesses, w)
			}
			return writeJSON(out, map[string]any{
				"origin": auditlog.CheckpointOrigin(c.Note), "size": c.Size, "root": c.Root, "signed_at": c.CreatedAt,
				"cosigned_by": witnesses, "checkpoint": string(c.Cosigned()),
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checkpoint's fields and note as JSON")
	cmd.Flags().StringVar(&database, "database", "", "database URL (default LOGBOOK_DATABASE_URL, else the embedded SQLite file)")
	return cmd
}

func newAuditKeyCmd() *cobra.Command {
	var newFile, origin string
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Print the checkpoints' public key as a note verifier string (or make a key: --new FILE --origin NAME)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if newFile != "" {
				if origin == "" || strings.ContainsAny(origin, "+ \t\n") {
					return exitWith(2, "--new needs --origin NAME: the log's name (no spaces or +), such as logbook.example.com/prod")
				}
				created, err := transparency.EnsureKeyFile(newFile, origin)
				if err != nil {
					return err
				}
				if !created {
					return exitWith(1, "%s exists already; it was left as it is", newFile)
				}
				key, err := transparency.ReadKeyFile(newFile)
				if err != nil {
					return err
				}
				fmt.Fprintln(out, key.Verifier)
				return nil
			}
			cfg, err := loadConfig()
			if err != nil {
				return exitWith(2, "configuration: %v", err)
			}
			s, err := loadTransparencySettings()
			if err != nil {
				return exitWith(2, "configuration: %v", err)
			}
			path, err := signingKeyPath(cmd.Context(), cfg, s, nil, false, newLogger(cfg, os.Stderr))
			if err != nil {
				return exitWith(2, "%v", err)
			}
			if path == "" {
				return exitWith(1, "no signing key: set LOGBOOK_SIGNING_KEY_FILE (the embedded SQLite server makes %s at first start)", defaultSigningKeyFile)
			}
			key, err := transparency.ReadKeyFile(path)
			if err != nil {
				return exitWith(2, "%v", err)
			}
			fmt.Fprintln(out, key.Verifier)
			return nil
		},
	}
	cmd.Flags().StringVar(&newFile, "new", "", "make a new signing key in this file (mode 0600) and print its verifier")
	cmd.Flags().StringVar(&origin, "origin", "", "with --new: the log's name, the checkpoints' origin")
	return cmd
}

func newAuditProveCmd() *cobra.Command {
	var database, output string
	cmd := &cobra.Command{
		Use:   "prove REQUEST_ID",
		Short: "Write the evidence bundle of a request: its events and its runs', each with an inclusion proof against a signed, cosigned checkpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, _, _, err := openConfiguredStore(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer store.Close()
			start := time.Now()
			bundle, err := merkletree.Prove(cmd.Context(), store, store, args[0])
			if err != nil {
				return exitWith(1, "%v", err)
			}
			raw, err := bundle.Marshal()
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			if err := transparency.WriteFileAtomic(output, raw, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %d events of request %s, proven in %s\n", output, len(bundle.Events), args[0], time.Since(start).Round(time.Microsecond))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the bundle to this file (default standard output)")
	cmd.Flags().StringVar(&database, "database", "", "database URL (default LOGBOOK_DATABASE_URL, else the embedded SQLite file)")
	return cmd
}

func newAuditRebuildTreeCmd() *cobra.Command {
	var database string
	cmd := &cobra.Command{
		Use:   "rebuild-tree",
		Short: "Empty the stored Merkle tree and build it again from the events (checkpoints stay, and audit verify checks the rebuilt tree against them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, _, _, err := openConfiguredStore(cmd.Context(), database)
			if err != nil {
				return err
			}
			defer store.Close()
			head, _, err := store.Head(cmd.Context())
			if err != nil {
				return err
			}
			progress, done := progressBar(head, "building the tree", "events", false)
			start := time.Now()
			size, err := merkletree.New(merkletree.Config{Events: store, Tree: store}).Rebuild(cmd.Context(), progress)
			done()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rebuilt the tree: %d leaves in %s\n", size, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "database URL (default LOGBOOK_DATABASE_URL, else the embedded SQLite file)")
	return cmd
}

// progressBar shows progress on a terminal (never with --json); done
// clears it.
func progressBar(total int64, description, unit string, quiet bool) (func(int64), func()) {
	if quiet || !isatty.IsTerminal(os.Stderr.Fd()) {
		return func(int64) {}, func() {}
	}
	bar := progressbar.NewOptions64(total, progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(description), progressbar.OptionShowCount(),
		progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit), progressbar.OptionClearOnFinish())
	return func(n int64) { _ = bar.Set64(n) }, func() { _ = bar.Finish() }
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
