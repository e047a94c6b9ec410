package main

// Embedded databases that lock inside: bbolt's single-writer mutex held
// across fdatasync, and SQLite's file write lock, waited for inside cgo.

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3"
	bolt "go.etcd.io/bbolt"
)

func init() {
	register(&scenario{name: "bbolt", run: runBbolt,
		what: "16 main.recordEvent goroutines call bbolt's DB.Update: the writer lock (DB.rwlock) is taken in beginRWTx and released in Tx.close, held across the commit's write and fdatasync"})
	register(&scenario{name: "sqlite", run: runSQLite, timeout: 5 * time.Minute,
		what: "mattn/go-sqlite3 (WAL): main.rebuildReport keeps a write transaction open across CPU-heavy statements; 8 main.recordVisit goroutines wait for SQLite's write lock inside cgo (busy handler sleeps)"})
}

// ---- bbolt ----

//go:noinline
func recordEvent(db *bolt.DB, id uint64, work int) error {
	burnSHA(work)
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], id)
		return b.Put(k[:], []byte("page_view /api/orders"))
	})
}

func runBbolt(h *H) error {
	dir, err := os.MkdirTemp("", "scenario-bbolt-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := bolt.Open(filepath.Join(dir, "events.db"), 0o600, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("events"))
		return err
	}); err != nil {
		return err
	}
	if err := h.startMonitor(); err != nil {
		return err
	}
	work := calibrate(30 * time.Microsecond)
	st := newStopper()
	var workers ids
	var seq struct{ n uint64 }
	var mu chanMutex = make(chan struct{}, 1)
	h.markOnset()
	for i := 0; i < 16; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			workers.add(goid())
			for !st.stopped() {
				mu <- struct{}{}
				seq.n++
				id := seq.n
				<-mu
				_ = recordEvent(db, id, work)
			}
		}()
	}
	time.Sleep(4 * time.Second)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "held-across-blocking"
	e.AlsoTrue = []string{"saturated-lock (one write transaction at a time, back to back)"}
	e.Lock = &Lock{Kind: "sync.Mutex", Type: "go.etcd.io/bbolt.DB", Field: "rwlock", Module: module("go.etcd.io/bbolt"), Site: "go.etcd.io/bbolt.(*DB).beginRWTx"}
	e.Caller = "main.recordEvent"
	e.Waiters = &Waiters{Function: "main.recordEvent", Count: 16, GoroutineIDs: workers.list()}
	e.Holder = &Holder{Function: "go.etcd.io/bbolt.(*DB).Update", Caller: "main.recordEvent", Did: "fsync-syscall",
		Inside: "fdatasync(2) (go.etcd.io/bbolt.fdatasync, from (*Tx).Commit -> (*Tx).write and (*Tx).writeMeta), plus pwrite(2) of the dirty pages; the user function main.recordEvent.func1 is microseconds",
		Hold:   "one write transaction: two fdatasyncs, ~0.5-1ms on the reference VM (disk dependent)", GoroutineIDs: workers.list(), Rotating: true}
	e.Notes = []string{
		"The lock is taken in (*DB).beginRWTx and released in (*Tx).close: the Lock and Unlock are in different functions; the critical section is everything between, i.e. (*DB).Update's call of the user function and (*Tx).Commit.",
		"Waiter stack: sync.(*Mutex).Lock < bbolt.(*DB).beginRWTx < bbolt.(*DB).Begin < bbolt.(*DB).Update < main.recordEvent. Unlock stack: sync.(*Mutex).Unlock < bbolt.(*Tx).close < bbolt.(*Tx).Commit < bbolt.(*DB).Update < main.recordEvent.",
		"The ids for the keys come from a channel-semaphore (chanMutex) so that no second sync.Mutex appears in the program.",
	}
	return nil
}

// chanMutex is a one-slot channel used as a lock.
type chanMutex chan struct{}

// ---- sqlite ----

// rebuildReport keeps a write transaction open while it runs CPU-heavy
// statements (inside cgo), so SQLite's write lock is held for seconds.
//
//go:noinline
func rebuildReport(db *sql.DB, rounds int) (time.Duration, error) {
	ctx := context.Background()
	t0 := time.Now()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM report`); err != nil {
		return 0, err
	}
	for i := 0; i < rounds; i++ {
		if _, err := tx.Exec(`INSERT INTO report(n, total)
			WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000)
			SELECT ?, sum(x % 7) FROM c`, i); err != nil {
			return 0, err
		}
	}
	err = tx.Commit()
	return time.Since(t0), err
}

//go:noinline
func recordVisit(db *sql.DB, page string) error {
	_, err := db.Exec(`INSERT INTO visits(page, at) VALUES (?, ?)`, page, time.Now().UnixNano())
	return err
}

func runSQLite(h *H) error {
	dir, err := os.MkdirTemp("", "scenario-sqlite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// _txlock=immediate: BEGIN takes the write lock at once, as services that
	// avoid SQLITE_BUSY upgrades usually configure it.
	dsn := fmt.Sprintf("file:%s?_journal_mode=WAL&_busy_timeout=30000&_txlock=immediate", filepath.Join(dir, "app.db"))
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(16)
	if _, err := db.Exec(`CREATE TABLE visits(page TEXT, at INTEGER); CREATE TABLE report(n INTEGER, total INTEGER)`); err != nil {
		return err
	}
	// Time one heavy statement outside the incident.
	t0 := time.Now()
	if _, err := rebuildReport(db, 1); err != nil {
		return err
	}
	one := time.Since(t0)
	rounds := max(1, int(1500*time.Millisecond/one))

	if err := h.startMonitor(); err != nil {
		return err
	}
	st := newStopper()
	var visitors ids
	for i := 0; i < 8; i++ {
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			visitors.add(goid())
			for !st.stopped() {
				_ = recordVisit(db, "/api/orders")
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(1 * time.Second)
	var holds durations
	rid := make(chan int64, 1)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		rid <- goid()
		for !st.stopped() {
			d, err := rebuildReport(db, rounds)
			if err != nil {
				fmt.Fprintln(os.Stderr, "rebuildReport:", err)
				return
			}
			holds.add(d)
			time.Sleep(300 * time.Millisecond)
		}
	}()
	holder := <-rid
	h.markOnset()
	time.Sleep(3500 * time.Millisecond)
	if err := h.snapshot(); err != nil {
		return err
	}
	e := h.exp
	e.Finding = "cgo-lock"
	e.AlsoTrue = []string{"long-critical-section (a write transaction held for seconds at a time (holder.hold), then released for 300ms)"}
	e.Lock = &Lock{Kind: "sqlite-write-lock", Type: "SQLite database write lock (WAL mode: a lock byte in the -shm file)", Module: module("github.com/mattn/go-sqlite3"),
		Site: "sqlite3_step (via github.com/mattn/go-sqlite3.(*SQLiteConn).exec), called by main.recordVisit through database/sql.(*DB).Exec"}
	e.Caller = "main.recordVisit"
	e.Waiters = &Waiters{Function: "main.recordVisit", Count: 8, GoroutineIDs: visitors.list(),
		State: "in a cgo call (trace: syscall state) in sqlite3_step: SQLite's busy handler sleeps (nanosleep/usleep, 1-100ms steps) and retries until the write lock is free; no futex, no Go park"}
	e.Holder = &Holder{Function: "main.rebuildReport", Caller: "main.rebuildReport", Did: "cgo-call",
		Inside:       "CPU in sqlite3_step (recursive CTE) inside cgo calls from (*sql.Tx).Exec, with the transaction (and so the write lock) open between them",
		Hold:         fmt.Sprintf("per transaction (measured): %s; %d statements of ~%v each", holds.summary(), rounds, one.Round(time.Millisecond)),
		GoroutineIDs: []int64{holder}}
	e.Notes = []string{
		"No Go lock is contended: the waiters never park on a sync primitive; each sits in a cgo call for up to seconds. The only signals are goroutines in long cgo calls (trace syscall state, goroutine dump '[syscall]'), threads in nanosleep, and the holder's long cgo calls between which the write lock stays held.",
		"database/sql gives each goroutine its own connection (SetMaxOpenConns 16); SQLite serializes writers with its own lock.",
	}
	return nil
}
