// Package store keeps the control plane's state: user resources (Mesh,
// Dataplane, policies) and the CP's own records (CA keys, token keys, VIP
// allocations, used login signatures), as opaque JSON documents addressed by
// (kind, mesh, name).
//
// One interface, three implementations that pass one conformance suite
// (storetest): memory (tests), SQLite (default, one file) and PostgreSQL
// (several CP replicas). Every write carries a version for optimistic
// concurrency, batches are atomic, and every change is announced to
// watchers, across processes for PostgreSQL (LISTEN/NOTIFY).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors returned by every implementation; test them with errors.Is.
var (
	// ErrNotFound: no record under that key (or it expired).
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists: Create of a key that holds a live record.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrConflict: the record changed since the version the writer read.
	ErrConflict = errors.New("store: version conflict")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrUnavailable: the database cannot be reached (after the store's own
	// retries); the caller may retry later. Nothing was written.
	ErrUnavailable = errors.New("store: database unavailable")
)

// Key addresses a record. Mesh is empty for global kinds (Mesh itself,
// HostnameGenerator, ...).
type Key struct {
	Kind string
	Mesh string
	Name string
}

// String renders the key as kind/mesh/name for logs and errors.
func (k Key) String() string {
	if k.Mesh == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Mesh + "/" + k.Name
}

// Record is one stored document.
type Record struct {
	Key
	// Version increases on every write; 0 before the first one. Set by the
	// store.
	Version int64
	// Spec is the document, JSON.
	Spec []byte
	// CreatedAt and ModifiedAt are set by the store.
	CreatedAt  time.Time
	ModifiedAt time.Time
	// ExpiresAt, when not zero, makes the record invisible (and replaceable
	// by Create) from that instant on; stores purge such records lazily.
	// Used for single-use login signatures and similar short-lived facts.
	ExpiresAt time.Time
}

// Mode says how a Write applies.
type Mode int

// Write modes.
const (
	// Create fails with ErrAlreadyExists when a live record holds the key.
	Create Mode = iota + 1
	// Update fails with ErrNotFound when absent and ErrConflict unless the
	// stored version equals Record.Version.
	Update
	// Upsert creates or overwrites whatever version is stored.
	Upsert
	// Delete removes the record; when Record.Version is not 0 it must match
	// (ErrConflict otherwise). Deleting an absent key is ErrNotFound.
	Delete
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case Create:
		return "create"
	case Update:
		return "update"
	case Upsert:
		return "upsert"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Write is one change of a Batch.
type Write struct {
	Mode   Mode
	Record Record
}

// Op is what happened to a record, as seen by watchers.
type Op int

// Ops announced by Watch.
const (
	Created Op = iota + 1
	Updated
	Deleted
)

// String names the op.
func (o Op) String() string {
	switch o {
	case Created:
		return "created"
	case Updated:
		return "updated"
	case Deleted:
		return "deleted"
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Event announces one change. It carries no document: watchers Get what
// they need, which keeps notifications small (PostgreSQL NOTIFY payloads are
// capped at 8000 bytes).
type Event struct {
	Op      Op
	Key     Key
	Version int64
}

// ListOptions narrows List.
type ListOptions struct {
	// Mesh, when not empty, keeps only records of that mesh. Global kinds
	// are listed with Mesh empty.
	Mesh string
}

// Store is the control plane's persistence. Implementations are safe for
// concurrent use by many goroutines and, for SQL stores, by many processes
// sharing one database.
type Store interface {
	// Get returns the live record under key or ErrNotFound.
	Get(ctx context.Context, key Key) (Record, error)
	// List returns the live records of kind, ordered by mesh then name.
	List(ctx context.Context, kind string, opts ListOptions) ([]Record, error)
	// Batch applies every write atomically: either all of them or none.
	// It returns the stored records (with versions and times) in order;
	// for a Delete, the record as it was.
	Batch(ctx context.Context, writes []Write) ([]Record, error)
	// Watch announces every change committed after it returns, including
	// changes made by other processes on the same database where the
	// implementation supports it. The channel is closed when ctx ends or the
	// store closes. A watcher that falls behind gets events coalesced, never
	// blocks writers; it must resync with List after a gap, which is
	// signalled by an Event with Op 0.
	Watch(ctx context.Context) (<-chan Event, error)
	// Close releases the store.
	Close() error
}

// Leaser grants named leases: at most one holder at a time until the lease
// expires or is released. Writers that must be unique across CP replicas
// (Route53 writer, VIP allocator, CA rotation) hold one.
type Leaser interface {
	// AcquireLease takes the lease for holder, or renews it when holder
	// already has it, for ttl. It reports whether holder holds it now.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Backend is what a control plane needs from its store.
type Backend interface {
	Store
	Leaser
}

// CreateRecord stores a new record; ErrAlreadyExists if the key is taken.
func CreateRecord(ctx context.Context, s Store, r Record) (Record, error) {
	return one(s.Batch(ctx, []Write{{Mode: Create, Record: r}}))
}

// UpdateRecord stores r if the stored version still equals r.Version.
func UpdateRecord(ctx context.Context, s Store, r Record) (Record, error) {
	return one(s.Batch(ctx, []Write{{Mode: Update, Record: r}}))
}

// UpsertRecord stores r whatever is stored.
func UpsertRecord(ctx context.Context, s Store, r Record) (Record, error) {
	return one(s.Batch(ctx, []Write{{Mode: Upsert, Record: r}}))
}

// DeleteRecord removes key; version 0 deletes whatever version is stored.
func DeleteRecord(ctx context.Context, s Store, key Key, version int64) error {
	_, err := s.Batch(ctx, []Write{{Mode: Delete, Record: Record{Key: key, Version: version}}})
	return err
}

func one(rs []Record, err error) (Record, error) {
	if err != nil {
		return Record{}, err
	}
	return rs[0], nil
}
