package auditlog

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain"
)

// CheckpointCheck is the verdict on one checkpoint against the log.
type CheckpointCheck struct {
	// Source says where the checkpoint came from: "stored" or a file.
	Source             string     `json:"source"`
	Size               int64      `json:"size"`
	Root               string     `json:"root"`
	SignedAt           *time.Time `json:"signed_at,omitempty"`
	OK                 bool       `json:"ok"`
	Problem            string     `json:"problem,omitempty"`
	ConsistencyChecked bool       `json:"consistency_proof_checked,omitempty"`
}

// Name says which checkpoint this is, for messages.
func (c CheckpointCheck) Name() string {
	if c.SignedAt != nil {
		return fmt.Sprintf("the %s checkpoint of size %d signed at %s", c.Source, c.Size, c.SignedAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("the checkpoint of size %d from %s", c.Size, c.Source)
}

// TreeReport is the outcome of checking the tree and the checkpoints.
type TreeReport struct {
	Size              int64             `json:"tree_size"`
	Root              string            `json:"root,omitempty"`
	StoredTreeSize    int64             `json:"stored_tree_size"`
	StoredTreeProblem string            `json:"stored_tree_problem,omitempty"`
	Checkpoints       []CheckpointCheck `json:"checkpoints"`
	OK                bool              `json:"ok"`
}

// TreeCheck recomputes the tree from the events as a walk over the log
// hands them over (Visit), compares its root with each checkpoint's at
// the checkpoint's size, and at the end (Finish) checks the stored tree,
// and each checkpoint against it with a consistency proof.
type TreeCheck struct {
	frontier   *Frontier
	checks     []CheckpointCheck // by size
	roots      []tlog.Hash       // the checkpoints' claimed roots, same order
	next       int               // the first check not reached yet
	judged     []CheckpointCheck // failed before the walk
	storedSize int64
	storedRoot *tlog.Hash // the recomputed root at storedSize
}

// NewTreeCheck prepares a check of the given checkpoints (any order)
// against a log whose stored tree holds storedSize leaves.
func NewTreeCheck(storedSize int64, checks []CheckpointCheck, roots []tlog.Hash) *TreeCheck {
	order := make([]int, len(checks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return int(checks[a].Size - checks[b].Size) })
	c := &TreeCheck{frontier: NewFrontier(), storedSize: storedSize}
	for _, i := range order {
		if checks[i].Problem != "" {
			c.judged = append(c.judged, checks[i]) // its signature or row failed already
			continue
		}
		c.checks = append(c.checks, checks[i])
		c.roots = append(c.roots, roots[i])
	}
	c.reached()
	return c
}

// Visit adds the next event of the log to the recomputed tree.
func (c *TreeCheck) Visit(e domain.RecordedEvent) error {
	if _, err := c.frontier.Append(LeafData(e)); err != nil {
		return err
	}
	c.reached()
	return nil
}

// reached judges the checkpoints of the tree's current size.
func (c *TreeCheck) reached() {
	size := c.frontier.Size()
	if size == c.storedSize && c.storedRoot == nil {
		root, err := c.frontier.Root()
		if err == nil {
			c.storedRoot = &root
		}
	}
	for c.next < len(c.checks) && c.checks[c.next].Size == size {
		ch := &c.checks[c.next]
		root, err := c.frontier.Root()
		switch {
		case err != nil:
			ch.Problem = err.Error()
		case root != c.roots[c.next]:
			ch.Problem = fmt.Sprintf("the log's first %d events hash to %s, not to this checkpoint's root %s: events at or before position %d were changed after it was signed (the log was rewritten)",
				size, root, c.roots[c.next], size)
		default:
			ch.OK = true
		}
		c.next++
	}
}

// Finish judges the checkpoints the walk did not reach, checks the stored
// tree against the recomputed one, and each good checkpoint against the
// stored tree with a consistency proof. chainOK says the walk went to the
// head (the chain is intact), so a checkpoint beyond it means the log was
// truncated.
func (c *TreeCheck) Finish(ctx context.Context, tree TreeStore, chainOK bool) TreeReport {
	n := c.frontier.Size()
	report := TreeReport{Size: n, StoredTreeSize: c.storedSize, OK: true}
	if root, err := c.frontier.Root(); err == nil && n > 0 {
		report.Root = root.String()
	}
	for i := c.next; i < len(c.checks); i++ {
		if chainOK {
			c.checks[i].Problem = fmt.Sprintf("the log has %d events, fewer than the %d this checkpoint covers: events after position %d were deleted (the log was truncated)", n, c.checks[i].Size, n)
		} else {
			c.checks[i].Problem = fmt.Sprintf("not checked: the hash chain breaks at or before position %d", n+1)
		}
	}
	reader := HashReader(ctx, tree)
	treeSize := min(c.storedSize, n)
	var treeRoot tlog.Hash
	if c.storedSize > n {
		report.StoredTreeProblem = fmt.Sprintf("the stored tree has %d leaves, more than the %d events checked", c.storedSize, n)
	} else if c.storedRoot != nil && treeSize > 0 {
		treeRoot = *c.storedRoot
		stored, err := tlog.TreeHash(treeSize, reader)
		switch {
		case err != nil:
			report.StoredTreeProblem = err.Error()
		case stored != treeRoot:
			report.StoredTreeProblem = fmt.Sprintf("the stored tree's root at size %d is %s, but the events hash to %s: the stored tree does not match the log (rebuild it: logbook audit rebuild-tree)", treeSize, stored, treeRoot)
		}
	}
	for i := range c.checks {
		ch := &c.checks[i]
		if ch.OK && report.StoredTreeProblem == "" && ch.Size <= treeSize && ch.Size > 0 {
			proof, err := tlog.ProveTree(treeSize, ch.Size, reader)
			if err == nil {
				err = tlog.CheckTree(proof, treeSize, treeRoot, ch.Size, c.roots[i])
			}
			if err != nil {
				ch.OK, ch.Problem = false, fmt.Sprintf("the stored tree gives no valid consistency proof from it to size %d: %v", treeSize, err)
			} else {
				ch.ConsistencyChecked = true
			}
		}
		if !ch.OK {
			report.OK = false
		}
	}
	if report.StoredTreeProblem != "" {
		report.OK = false
	}
	for _, ch := range c.judged {
		report.OK = false
		report.Checkpoints = append(report.Checkpoints, ch)
	}
	report.Checkpoints = append(report.Checkpoints, c.checks...)
	return report
}
