package webui

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"time"
)

// SQLSessions keeps the web sessions in the event store's database
// (web_sessions and web_session_commands, migrations/*/00110_web_sessions.sql),
// so a restart logs nobody out and a session opened on one server works on
// every other server of the database, its console's history with it.
//
// The cookie's value is never stored: a row is keyed by its SHA-256. The
// token, the CSRF token and the commands' text are sealed with AES-GCM
// under a key derived from the cookie (HKDF-SHA256), so the tables alone
// give neither a cookie that logs in nor a token. The cookie is 32 random
// bytes, so a fast hash is as good as a slow one.
//
// Writes go to Write (on SQLite the single connection that begins
// transactions IMMEDIATE, so they queue behind appends), reads to Read.
type SQLSessions struct {
	Read, Write *sql.DB
	Rebind      func(string) string // $1 → the dialect's placeholders
}

// sessionKey is what a cookie's value yields: the row's key and the seal.
type sessionKey struct {
	hash []byte
	aead cipher.AEAD
}

// sealInfo is the HKDF info of the sealing key; a new scheme gets a new one.
const sealInfo = "logbook web session seal v1"

func keyOf(id string) (sessionKey, error) {
	sum := sha256.Sum256([]byte(id))
	key, err := hkdf.Key(sha256.New, []byte(id), nil, sealInfo, 32)
	if err != nil {
		return sessionKey{}, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sessionKey{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sessionKey{}, err
	}
	return sessionKey{hash: sum[:], aead: aead}, nil
}

// additional binds a sealed value to its row and column, so no sealed
// value opens in another's place.
func (k sessionKey) additional(field string) []byte {
	return append([]byte(field+"\x00"), k.hash...)
}

// seal returns the nonce followed by the sealed plain text.
func (k sessionKey) seal(field, plain string) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand never fails on supported platforms
	return k.aead.Seal(nonce, nonce, []byte(plain), k.additional(field))
}

// errSealBroken says a sealed value does not open under its cookie's key:
// the row was altered.
var errSealBroken = errors.New("a sealed value of a web session does not open")

func (k sessionKey) open(field string, sealed []byte) (string, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n {
		return "", errSealBroken
	}
	plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], k.additional(field))
	if err != nil {
		return "", errSealBroken
	}
	return string(plain), nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// inTx runs f in a transaction on the write pool.
func (q SQLSessions) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := q.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Create implements SessionStore.
func (q SQLSessions) Create(ctx context.Context, s StoredSession) error {
	k, err := keyOf(s.ID)
	if err != nil {
		return err
	}
	return q.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, q.Rebind(`INSERT INTO web_sessions (id_hash, user_id, sealed_token, sealed_csrf, created_us, seen_us)
VALUES ($1, $2, $3, $4, $5, $6)`), k.hash, s.User, k.seal("token", s.Token), k.seal("csrf", s.CSRF), micros(s.Created), micros(s.Seen)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, q.Rebind(`SELECT id_hash FROM (
  SELECT id_hash, row_number() OVER (ORDER BY seen_us DESC, created_us DESC) AS n FROM web_sessions WHERE user_id = $1
) ranked WHERE n > $2`), s.User, maxSessionsPerUser)
		if err != nil {
			return err
		}
		var evicted [][]byte
		for rows.Next() {
			var hash []byte
			if err := rows.Scan(&hash); err != nil {
				rows.Close()
				return err
			}
			evicted = append(evicted, hash)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, hash := range evicted {
			if err := q.deleteIn(ctx, tx, hash); err != nil {
				return err
			}
		}
		return nil
	})
}

// Load implements SessionStore. A row whose sealed values do not open
// under the cookie's key (altered in the database) is no session.
func (q SQLSessions) Load(ctx context.Context, id string) (StoredSession, bool, error) {
	k, err := keyOf(id)
	if err != nil {
		return StoredSession{}, false, err
	}
	var (
		sealedToken, sealedCSRF []byte
		created, seen           int64
		s                       = StoredSession{ID: id}
	)
	err = q.Read.QueryRowContext(ctx, q.Rebind(`SELECT user_id, sealed_token, sealed_csrf, created_us, seen_us FROM web_sessions WHERE id_hash = $1`), k.hash).
		Scan(&s.User, &sealedToken, &sealedCSRF, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return StoredSession{}, false, nil
	}
	if err != nil {
		return StoredSession{}, false, err
	}
	if s.Token, err = k.open("token", sealedToken); err != nil {
		return StoredSession{}, false, nil
	}
	if s.CSRF, err = k.open("csrf", sealedCSRF); err != nil {
		return StoredSession{}, false, nil
	}
	s.Created, s.Seen = fromMicros(created), fromMicros(seen)
	return s, true, nil
}

// Touch implements SessionStore.
func (q SQLSessions) Touch(ctx context.Context, id string, seen time.Time) error {
	k, err := keyOf(id)
	if err != nil {
		return err
	}
	_, err = q.Write.ExecContext(ctx, q.Rebind(`UPDATE web_sessions SET seen_us = $2 WHERE id_hash = $1 AND seen_us < $2`), k.hash, micros(seen))
	return err
}

// Remember implements SessionStore. Two servers remembering at once for
// one session may both find the same command to drop; only the one whose
// delete removed it reports it.
func (q SQLSessions) Remember(ctx context.Context, id string, c ConsoleCommand) ([]string, error) {
	k, err := keyOf(id)
	if err != nil {
		return nil, err
	}
	var dropped []string
	err = q.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, q.Rebind(`SELECT 1 FROM web_sessions WHERE id_hash = $1`), k.hash).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // the session ended meanwhile
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q.Rebind(`INSERT INTO web_session_commands (session_hash, request_id, sealed_text, at_us) VALUES ($1, $2, $3, $4)`),
			k.hash, c.RequestID, k.seal("text", c.Text), micros(c.At)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, q.Rebind(`SELECT seq, request_id FROM (
  SELECT seq, request_id, row_number() OVER (ORDER BY seq DESC) AS n FROM web_session_commands WHERE session_hash = $1
) ranked WHERE n > $2`), k.hash, maxScrollback)
		if err != nil {
			return err
		}
		type old struct {
			seq       int64
			requestID string
		}
		var olds []old
		for rows.Next() {
			var o old
			if err := rows.Scan(&o.seq, &o.requestID); err != nil {
				rows.Close()
				return err
			}
			olds = append(olds, o)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, o := range olds {
			res, err := tx.ExecContext(ctx, q.Rebind(`DELETE FROM web_session_commands WHERE seq = $1`), o.seq)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				dropped = append(dropped, o.requestID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return dropped, nil
}

// Scrollback implements SessionStore. A command whose text does not open
// (altered in the database) is left out.
func (q SQLSessions) Scrollback(ctx context.Context, id string) ([]ConsoleCommand, error) {
	k, err := keyOf(id)
	if err != nil {
		return nil, err
	}
	rows, err := q.Read.QueryContext(ctx, q.Rebind(`SELECT request_id, sealed_text, at_us FROM web_session_commands WHERE session_hash = $1 ORDER BY seq`), k.hash)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ConsoleCommand
	for rows.Next() {
		var (
			c      ConsoleCommand
			sealed []byte
			at     int64
		)
		if err := rows.Scan(&c.RequestID, &sealed, &at); err != nil {
			return nil, err
		}
		if c.Text, err = k.open("text", sealed); err != nil {
			continue
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Delete implements SessionStore.
func (q SQLSessions) Delete(ctx context.Context, id string) error {
	k, err := keyOf(id)
	if err != nil {
		return err
	}
	return q.inTx(ctx, func(tx *sql.Tx) error { return q.deleteIn(ctx, tx, k.hash) })
}

// deleteIn deletes a session and its commands. Postgres would cascade; on
// SQLite the foreign key is not enforced, so the commands go explicitly.
func (q SQLSessions) deleteIn(ctx context.Context, tx *sql.Tx, hash []byte) error {
	if _, err := tx.ExecContext(ctx, q.Rebind(`DELETE FROM web_session_commands WHERE session_hash = $1`), hash); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, q.Rebind(`DELETE FROM web_sessions WHERE id_hash = $1`), hash)
	return err
}

// Expire implements SessionStore.
func (q SQLSessions) Expire(ctx context.Context, seenBefore, createdBefore time.Time) (int, error) {
	var n int64
	err := q.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, q.Rebind(`DELETE FROM web_session_commands WHERE session_hash IN (
  SELECT id_hash FROM web_sessions WHERE seen_us < $1 OR created_us < $2)`), micros(seenBefore), micros(createdBefore)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, q.Rebind(`DELETE FROM web_sessions WHERE seen_us < $1 OR created_us < $2`), micros(seenBefore), micros(createdBefore))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
