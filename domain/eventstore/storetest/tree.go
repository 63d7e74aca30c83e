package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain/auditlog"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// runTree checks the store keeps the Merkle tree and the checkpoints
// (auditlog.TreeStore), which every adapter implements.
func runTree(t *testing.T, h Harness) {
	t.Run("keeps the Merkle tree's hashes with a compare-and-set size", func(t *testing.T) { t.Parallel(); testTreePacks(t, h) })
	t.Run("keeps signed checkpoints append-only, with cosignatures", func(t *testing.T) { t.Parallel(); testCheckpoints(t, h) })
	t.Run("lets one of two processes move the tree", func(t *testing.T) { t.Parallel(); testTreeTwoMaintainers(t, h) })
}

func treeOf(t *testing.T, s eventstore.Store) auditlog.TreeStore {
	t.Helper()
	tree, ok := s.(auditlog.TreeStore)
	if !ok {
		t.Fatalf("%T does not implement auditlog.TreeStore", s)
	}
	return tree
}

// leafPacks builds the packs of leaves [from, to) of a tree whose leaf i
// holds "leaf i", on f.
func leafPacks(t *testing.T, f *auditlog.Frontier, to int64) [][]byte {
	t.Helper()
	var packs [][]byte
	for f.Size() < to {
		hashes, err := f.Append(fmt.Appendf(nil, "leaf %d", f.Size()))
		if err != nil {
			t.Fatal(err)
		}
		packs = append(packs, auditlog.Pack(hashes))
	}
	return packs
}

func testTreePacks(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	tree := treeOf(t, h.New(t))
	if size, err := tree.TreeSize(ctx); err != nil || size != 0 {
		t.Fatalf("a new store's tree: size %d, %v; want 0", size, err)
	}
	f := auditlog.NewFrontier()
	if err := tree.AppendTree(ctx, 0, leafPacks(t, f, 7)); err != nil {
		t.Fatal(err)
	}
	stale := auditlog.NewFrontier()
	leafPacks(t, stale, 3)
	if err := tree.AppendTree(ctx, 3, leafPacks(t, stale, 5)); !errors.Is(err, auditlog.ErrTreeMoved) {
		t.Fatalf("appending at size 3 to a tree of 7: %v, want ErrTreeMoved", err)
	}
	if err := tree.AppendTree(ctx, 7, leafPacks(t, f, 300)); err != nil {
		t.Fatal(err)
	}
	if size, err := tree.TreeSize(ctx); err != nil || size != 300 {
		t.Fatalf("size %d, %v; want 300", size, err)
	}
	root, err := f.Root()
	if err != nil {
		t.Fatal(err)
	}
	r := auditlog.HashReader(ctx, tree)
	if stored, err := tlog.TreeHash(300, r); err != nil || stored != root {
		t.Fatalf("the stored tree's root %v, %v; want %v", stored, err, root)
	}
	for _, leaf := range []int64{0, 5, 6, 7, 255, 299} {
		proof, err := tlog.ProveRecord(300, leaf, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(proof, 300, root, leaf, tlog.RecordHash(fmt.Appendf(nil, "leaf %d", leaf))); err != nil {
			t.Fatalf("leaf %d's proof from the stored tree: %v", leaf, err)
		}
	}
	old, err := tlog.TreeHash(100, r)
	if err != nil {
		t.Fatal(err)
	}
	consistency, err := tlog.ProveTree(300, 100, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(consistency, 300, root, 100, old); err != nil {
		t.Fatalf("consistency 100 -> 300 from the stored tree: %v", err)
	}
	if err := tree.ResetTree(ctx); err != nil {
		t.Fatal(err)
	}
	packs, err := tree.TreePacks(ctx, []int64{0, 1, 299})
	if size, _ := tree.TreeSize(ctx); size != 0 || len(packs) != 0 || err != nil {
		t.Fatalf("after a reset: size %d, %d packs, %v; want an empty tree", size, len(packs), err)
	}
}

func testCheckpoints(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.New(t)
	tree := treeOf(t, s)
	skey, _, err := note.GenerateKey(nil, "logbook.test/conformance")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if cps, err := tree.Checkpoints(ctx, 0); err != nil || len(cps) != 0 {
		t.Fatalf("a new store's checkpoints: %v, %v", cps, err)
	}
	at := time.Date(2026, 12, 6, 7, 0, 0, 123456000, time.UTC)
	var stored []auditlog.StoredCheckpoint
	for i, size := range []int64{10, 20, 30} {
		root := tlog.RecordHash(fmt.Appendf(nil, "root %d", size))
		signed, err := auditlog.SignCheckpoint(signer, size, root)
		if err != nil {
			t.Fatal(err)
		}
		c := auditlog.StoredCheckpoint{Size: size, Root: root, Note: signed, CreatedAt: at.Add(time.Duration(i) * time.Minute)}
		if err := tree.AddCheckpoint(ctx, c); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, c)
	}
	if err := tree.AddCheckpoint(ctx, stored[1]); err != nil {
		t.Fatalf("storing the same checkpoint again: %v, want a no-op", err)
	}
	forked := stored[1]
	forked.Root = tlog.RecordHash([]byte("another root"))
	if forked.Note, err = auditlog.SignCheckpoint(signer, 20, forked.Root); err != nil {
		t.Fatal(err)
	}
	if err := tree.AddCheckpoint(ctx, forked); err == nil || !strings.Contains(err.Error(), "size 20") {
		t.Fatalf("storing another checkpoint of a stored size: %v, want an error naming the size", err)
	}
	if err := tree.AddCosignature(ctx, 20, "w1+00000001", "— w1 AAAA\n"); err != nil {
		t.Fatal(err)
	}
	if err := tree.AddCosignature(ctx, 20, "w1+00000001", "— w1 BBBB\n"); err != nil {
		t.Fatal(err)
	}
	if err := tree.AddCosignature(ctx, 30, "w2+00000002", "— w2 CCCC\n"); err != nil {
		t.Fatal(err)
	}
	got, err := tree.Checkpoints(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Size != 30 || got[1].Size != 20 {
		t.Fatalf("the newest two checkpoints: %+v", got)
	}
	if string(got[1].Note) != string(stored[1].Note) || got[1].Root != stored[1].Root || !got[1].CreatedAt.Equal(stored[1].CreatedAt) {
		t.Fatalf("checkpoint 20 read back as %+v, stored %+v", got[1], stored[1])
	}
	if got[1].Cosignatures["w1+00000001"] != "— w1 BBBB\n" || len(got[1].Cosignatures) != 1 || got[0].Cosignatures["w2+00000002"] != "— w2 CCCC\n" {
		t.Fatalf("cosignatures read back: %v and %v", got[1].Cosignatures, got[0].Cosignatures)
	}
	if all, err := tree.Checkpoints(ctx, 0); err != nil || len(all) != 3 || all[2].Size != 10 {
		t.Fatalf("all checkpoints: %d, %v", len(all), err)
	}
	for _, q := range []string{"DELETE FROM audit_checkpoints WHERE size = 10", "UPDATE audit_checkpoints SET size = 11 WHERE size = 10"} {
		if err := h.Exec(s, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v, want the table to refuse as append-only", q, err)
		}
	}
}

func testTreeTwoMaintainers(t *testing.T, h Harness) {
	ctx := context.Background()
	first := h.New(t)
	second := h.Another(t, first)
	a, b := auditlog.NewFrontier(), auditlog.NewFrontier()
	packsA, packsB := leafPacks(t, a, 50), leafPacks(t, b, 40)
	errs := make(chan error, 2)
	go func() { errs <- treeOf(t, first).AppendTree(ctx, 0, packsA) }()
	go func() { errs <- treeOf(t, second).AppendTree(ctx, 0, packsB) }()
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) || !(errors.Is(e1, auditlog.ErrTreeMoved) || errors.Is(e2, auditlog.ErrTreeMoved)) {
		t.Fatalf("two appends at size 0: %v and %v, want one to win and the other ErrTreeMoved", e1, e2)
	}
	size, err := treeOf(t, first).TreeSize(ctx)
	if err != nil || (size != 50 && size != 40) {
		t.Fatalf("size after the race: %d, %v", size, err)
	}
	packs, err := treeOf(t, second).TreePacks(ctx, []int64{size - 1, size})
	if err != nil || len(packs) != 1 {
		t.Fatalf("the winner's packs only: %d packs, %v", len(packs), err)
	}
}
