package filter

import "sync"

// lru is a bounded, mutex-guarded least-recently-used cache keyed by string.
// A hit allocates nothing.
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	items map[string]*lruNode[V]
	head  *lruNode[V] // most recently used
	tail  *lruNode[V] // least recently used
}

type lruNode[V any] struct {
	key        string
	val        V
	prev, next *lruNode[V]
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, items: make(map[string]*lruNode[V], max)}
}

// get returns the value for key and marks it recently used.
func (l *lru[V]) get(key string) (V, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	l.moveToFront(n)
	return n.val, true
}

// put stores key, evicting the least recently used entry when full.
func (l *lru[V]) put(key string, val V) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n, ok := l.items[key]; ok {
		n.val = val
		l.moveToFront(n)
		return
	}
	var n *lruNode[V]
	if len(l.items) >= l.max {
		n = l.tail // reuse the evicted node
		l.unlink(n)
		delete(l.items, n.key)
		n.key, n.val = key, val
	} else {
		n = &lruNode[V]{key: key, val: val}
	}
	l.items[key] = n
	l.pushFront(n)
}

// len returns the number of entries.
func (l *lru[V]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}

func (l *lru[V]) moveToFront(n *lruNode[V]) {
	if l.head == n {
		return
	}
	l.unlink(n)
	l.pushFront(n)
}

func (l *lru[V]) unlink(n *lruNode[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (l *lru[V]) pushFront(n *lruNode[V]) {
	n.next = l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	if l.tail == nil {
		l.tail = n
	}
}
