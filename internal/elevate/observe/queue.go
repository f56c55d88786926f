package observe

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Why push refused a job.
var (
	errQueueFull   = errors.New("the queue is full")
	errQueueClosed = errors.New("the server is shutting down")
)

// queue hands jobs to one worker through a bounded buffer. push never
// waits: a full buffer refuses the job, so whatever the worker waits on
// (a mail server, a webhook receiver) cannot hold up the caller. One
// worker keeps the jobs in order, so a chat channel reads a request
// before its approval.
type queue[T any] struct {
	jobs chan T
	work func(context.Context, T)
	// ctx is the worker's; close cancels it when draining runs out of
	// time, which ends the worker's waits (requests, back-off).
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// mu guards closed; push holds it shared, close exclusively, so no
	// push races the closing of jobs.
	mu     sync.RWMutex
	closed bool
}

func newQueue[T any](size int, work func(context.Context, T)) *queue[T] {
	ctx, cancel := context.WithCancel(context.Background()) //nolint:gosec // G118: close calls it
	q := &queue[T]{jobs: make(chan T, size), work: work, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go q.run()
	return q
}

func (q *queue[T]) run() {
	defer close(q.done)
	for j := range q.jobs {
		if q.ctx.Err() == nil { // abandoned at close: drain without working
			q.work(q.ctx, j)
		}
	}
}

// push queues j, or says why not: the buffer is full, or the queue
// closed.
func (q *queue[T]) push(j T) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return errQueueClosed
	}
	select {
	case q.jobs <- j:
		return nil
	default:
		return errQueueFull
	}
}

// depth is how many jobs wait.
func (q *queue[T]) depth() int { return len(q.jobs) }

// close stops taking jobs and lets the worker finish those queued until
// ctx ends; then it abandons the rest.
func (q *queue[T]) close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		q.cancel()
		return nil
	case <-ctx.Done():
	}
	left := len(q.jobs)
	q.cancel()
	<-q.done
	return fmt.Errorf("%d notices not sent: %w", left, ctx.Err())
}
