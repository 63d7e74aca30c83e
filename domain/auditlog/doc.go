// Package auditlog is the evidence an auditor can check without the
// database: an RFC 6962 Merkle tree whose leaves are the log's events in
// position order, checkpoints of it signed as C2SP signed notes, the
// witness's rule for cosigning one (C2SP tlog-witness), and evidence
// bundles that prove a request's events are in a signed, cosigned tree.
//
// The hashing, proofs and notes are golang.org/x/mod/sumdb/tlog and
// golang.org/x/mod/sumdb/note (the Go checksum database's, whose note and
// proof formats C2SP standardised); the checkpoint body and cosignature/v1
// signatures are github.com/transparency-dev/formats. This package holds
// no I/O: the tree's hashes live behind TreeStore.
package auditlog
