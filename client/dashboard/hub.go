package dashboard

import (
	"encoding/json"
	"fmt"
	"sync"
)

// subscriberBuffer is how many events a page may lag behind before it is dropped (its
// browser reconnects and starts again from a fresh snapshot).
const subscriberBuffer = 64

// hub fans events out to the pages that are open (Server-Sent Events), at most max
// of them (no cap when 0).
type hub struct {
	mu      sync.Mutex
	max     int
	subs    map[chan []byte]struct{}
	refused uint64
}

// subscribe returns a channel of encoded events; cancel when the page goes. ok is
// false, and nothing to cancel, when max pages are open.
func (h *hub) subscribe() (events <-chan []byte, cancel func(), ok bool) {
	ch := make(chan []byte, subscriberBuffer)
	h.mu.Lock()
	if h.max > 0 && len(h.subs) >= h.max {
		h.refused++
		h.mu.Unlock()
		return nil, func() {}, false
	}
	if h.subs == nil {
		h.subs = map[chan []byte]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}, true
}

// publish encodes v once and queues it for every page; a page whose queue is full is
// dropped rather than waited for.
func (h *hub) publish(event string, v any) {
	msg, err := encodeEvent(event, v)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- msg:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// subscribers is how many pages are open.
func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// stats returns the pages open, the cap, and how many were refused for it.
func (h *hub) stats() (open, limit int, refused uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs), h.max, h.refused
}

// encodeEvent renders one Server-Sent Event.
func encodeEvent(event string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", event, data), nil
}
