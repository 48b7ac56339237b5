package auth

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
)

// Store holds the current token table of a file. Reload swaps in a new table
// atomically; a file that fails to parse leaves the old table serving.
type Store struct {
	path  string
	log   *slog.Logger
	table atomic.Pointer[Table]
}

// Open reads the token file at path; it fails if the file is missing or broken.
func Open(path string, log *slog.Logger) (*Store, error) {
	s := &Store{path: path, log: log}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewStatic returns a store of a fixed table, for tests.
func NewStatic(t *Table) *Store {
	s := &Store{log: slog.New(slog.DiscardHandler)}
	s.table.Store(t)
	return s
}

// Path returns the token file's path.
func (s *Store) Path() string { return s.path }

func (s *Store) load() error {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("auth tokens: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return fmt.Errorf("auth tokens %s: %w", s.path, err)
	}
	if t.Len() == 0 {
		return fmt.Errorf("auth tokens %s: no tokens", s.path)
	}
	s.table.Store(t)
	return nil
}

// Reload re-reads the file. On error the old tokens keep working and the error is
// logged (and returned).
func (s *Store) Reload() error {
	if err := s.load(); err != nil {
		s.log.Error("token file refused; the previous tokens stay in force", "err", err)
		return err
	}
	s.log.Info("token file loaded", "path", s.path, "tokens", s.table.Load().Len())
	return nil
}

// Lookup returns the identity of token under the current table.
func (s *Store) Lookup(token string) (Identity, bool) { return s.table.Load().Lookup(token) }
