package auditlog

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/logbookhq/logbook/domain"
	"github.com/logbookhq/logbook/domain/eventstore"
)

// LeafData is what the tree's leaf for an event hashes: exactly the bytes
// the hash chain covers (eventstore.ChainInput). The leaf hash is
// tlog.RecordHash(LeafData), RFC 6962's SHA-256(0x00 ‖ data).
func LeafData(e domain.RecordedEvent) []byte { return eventstore.ChainInput(e.PrevHash, e) }

// LeafIndex is an event's leaf: positions count from 1, leaves from 0.
func LeafIndex(position int64) int64 { return position - 1 }

// ErrTreeMoved says the stored tree's size was not the one an append
// expected: another maintainer moved it. The maintainer starts again from
// the stored size.
var ErrTreeMoved = errors.New("the stored Merkle tree moved under this maintainer")

// TreeStore keeps the tree's hashes beside the events, and the signed
// checkpoints. Leaf n's pack is the stored hashes tlog.StoredHashes gives
// for it, concatenated: its leaf hash, then one hash per subtree it
// completes. So a tree of n leaves is n rows, and every hash a proof needs
// is one indexed read.
type TreeStore interface {
	// TreeSize is how many leaves the stored tree holds.
	TreeSize(ctx context.Context) (int64, error)
	// TreePacks returns the packs of the leaves asked for that are stored.
	TreePacks(ctx context.Context, leaves []int64) (map[int64][]byte, error)
	// AppendTree stores packs for leaves from, from+1, ... and moves the
	// size to from+len(packs), in one transaction, only if the size is
	// still from; otherwise it writes nothing and returns ErrTreeMoved.
	AppendTree(ctx context.Context, from int64, packs [][]byte) error
	// ResetTree empties the tree for a rebuild. Checkpoints stay: they are
	// what a rebuilt tree is checked against.
	ResetTree(ctx context.Context) error
	// AddCheckpoint stores a signed checkpoint. Storing one of the same
	// size and note again is a no-op; another note for a stored size is
	// an error.
	AddCheckpoint(ctx context.Context, c StoredCheckpoint) error
	// AddCosignature stores (or replaces) a witness's cosignature line of
	// the checkpoint of size.
	AddCosignature(ctx context.Context, size int64, witness, line string) error
	// Checkpoints returns the stored checkpoints, newest first, with their
	// cosignatures; at most limit of them (all when limit <= 0).
	Checkpoints(ctx context.Context, limit int) ([]StoredCheckpoint, error)
}

// StoredCheckpoint is a checkpoint the server signed, as stored.
type StoredCheckpoint struct {
	Size      int64
	Root      tlog.Hash
	Note      []byte // the signed note, as signed
	CreatedAt time.Time
	// Cosignatures are witnesses' signature lines ("— name base64\n"),
	// keyed by witness (name+keyhash).
	Cosignatures map[string]string
}

// Cosigned is the note with every stored cosignature line appended: a
// C2SP cosigned checkpoint.
func (c StoredCheckpoint) Cosigned() []byte {
	out := append([]byte(nil), c.Note...)
	for _, w := range sortedKeys(c.Cosignatures) {
		out = append(out, c.Cosignatures[w]...)
	}
	return out
}

// packHashes splits a leaf's pack into its hashes.
func packHashes(leaf int64, pack []byte) ([]tlog.Hash, error) {
	want := 1 + bits.TrailingZeros64(uint64(leaf+1))
	if len(pack) != want*tlog.HashSize {
		return nil, fmt.Errorf("the stored tree's pack for leaf %d is %d bytes, not %d hashes: the tree store is damaged (rebuild it with logbook audit rebuild-tree)", leaf, len(pack), want)
	}
	out := make([]tlog.Hash, want)
	for i := range out {
		copy(out[i][:], pack[i*tlog.HashSize:])
	}
	return out, nil
}

// Pack concatenates a leaf's stored hashes.
func Pack(hashes []tlog.Hash) []byte {
	out := make([]byte, 0, len(hashes)*tlog.HashSize)
	for _, h := range hashes {
		out = append(out, h[:]...)
	}
	return out
}

// packOf says which leaf's pack holds a stored hash, and where in it: the
// hash of subtree m at level l is made by the append of the subtree's last
// leaf, (m+1)<<l - 1, as that append's l-th hash.
func packOf(index int64) (leaf int64, offset int) {
	level, m := tlog.SplitStoredHashIndex(index)
	return (m+1)<<level - 1, level
}

// HashReader reads stored hashes from a TreeStore, for tlog's proofs: one
// query for all the hashes a proof needs.
func HashReader(ctx context.Context, s TreeStore) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		leaves := make([]int64, 0, len(indexes))
		seen := map[int64]bool{}
		for _, ix := range indexes {
			leaf, _ := packOf(ix)
			if !seen[leaf] {
				seen[leaf] = true
				leaves = append(leaves, leaf)
			}
		}
		packs, err := s.TreePacks(ctx, leaves)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(indexes))
		for i, ix := range indexes {
			leaf, offset := packOf(ix)
			pack, ok := packs[leaf]
			if !ok {
				return nil, fmt.Errorf("the stored tree has no hashes for leaf %d (position %d): it is behind or damaged", leaf, leaf+1)
			}
			hashes, err := packHashes(leaf, pack)
			if err != nil {
				return nil, err
			}
			if offset >= len(hashes) {
				return nil, fmt.Errorf("stored hash index %d is not in leaf %d's pack", ix, leaf)
			}
			out[i] = hashes[offset]
		}
		return out, nil
	})
}

// Frontier is the right edge of a tree: the newest complete subtree at
// each level, which is all that appending a leaf (tlog.StoredHashes) or
// hashing the whole tree (tlog.TreeHash) reads. With it a maintainer
// appends without reading the store, and a walk over the log computes the
// tree head at every size in O(log n) memory.
type Frontier struct {
	size   int64
	hashes map[int64]tlog.Hash // stored hash index -> hash
	level  map[int]int64       // level -> the index held for it
}

// NewFrontier is the frontier of the empty tree.
func NewFrontier() *Frontier {
	return &Frontier{hashes: map[int64]tlog.Hash{}, level: map[int]int64{}}
}

// LoadFrontier reads the frontier of a stored tree of size leaves: one
// hash per level, O(log size) reads.
func LoadFrontier(size int64, r tlog.HashReader) (*Frontier, error) {
	f := NewFrontier()
	f.size = size
	var indexes []int64
	for l := 0; size>>l > 0; l++ {
		indexes = append(indexes, tlog.StoredHashIndex(l, size>>l-1))
	}
	if len(indexes) == 0 {
		return f, nil
	}
	hashes, err := r.ReadHashes(indexes)
	if err != nil {
		return nil, err
	}
	for i, ix := range indexes {
		f.keep(ix, hashes[i])
	}
	return f, nil
}

// Size is the number of leaves.
func (f *Frontier) Size() int64 { return f.size }

// Append adds a leaf and returns its stored hashes (its pack).
func (f *Frontier) Append(leafData []byte) ([]tlog.Hash, error) {
	hashes, err := tlog.StoredHashes(f.size, leafData, f)
	if err != nil {
		return nil, err
	}
	first := tlog.StoredHashIndex(0, f.size)
	for i, h := range hashes {
		f.keep(first+int64(i), h)
	}
	f.size++
	return hashes, nil
}

// Root is the tree head at the current size.
func (f *Frontier) Root() (tlog.Hash, error) { return tlog.TreeHash(f.size, f) }

// ReadHashes implements tlog.HashReader over the hashes the frontier holds.
func (f *Frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, ix := range indexes {
		h, ok := f.hashes[ix]
		if !ok {
			return nil, fmt.Errorf("stored hash %d is not on the tree's frontier", ix)
		}
		out[i] = h
	}
	return out, nil
}

func (f *Frontier) keep(index int64, h tlog.Hash) {
	level, _ := tlog.SplitStoredHashIndex(index)
	if old, ok := f.level[level]; ok {
		delete(f.hashes, old)
	}
	f.level[level] = index
	f.hashes[index] = h
}

// Clone copies the frontier, so a batch can be built on the copy and
// dropped if it is not stored.
func (f *Frontier) Clone() *Frontier {
	c := &Frontier{size: f.size, hashes: make(map[int64]tlog.Hash, len(f.hashes)), level: make(map[int]int64, len(f.level))}
	for k, v := range f.hashes {
		c.hashes[k] = v
	}
	for k, v := range f.level {
		c.level[k] = v
	}
	return c
}
