package stream

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// TallyBuckets is how many buckets the sliding window is cut into; the window slides
// one bucket (TallyWindow/TallyBuckets) at a time.
const TallyBuckets = 64

// Count is how often one category was seen.
type Count struct {
	Label string
	N     uint64
}

// Summary is a stream's tallies over its sliding window.
type Summary struct {
	CameraID string
	// WindowStart and WindowEnd are the oldest and newest tallied capture times.
	WindowStart, WindowEnd time.Time
	// Frames is how many processed frames fall in the window.
	Frames uint64
	// Counts has one entry per category seen, most frequent first (ties by label).
	Counts []Count
}

// bucket holds the counts of the frames captured in one slice of the window.
type bucket struct {
	used        bool
	index       int64 // capture time / bucket width
	frames      uint64
	counts      map[string]uint64
	first, last time.Time
}

// tally counts categories over a sliding window of capture time, in buckets: the
// window covers the last TallyWindow plus at most one bucket's width (the bucket
// being filled), and memory is bounded by the buckets times the categories a model
// can name.
type tally struct {
	width   time.Duration
	buckets [TallyBuckets + 1]bucket // a ring by bucket index
	newest  int64
}

func newTally(window time.Duration) *tally {
	return &tally{width: max(window/TallyBuckets, 1), newest: math.MinInt64 / 2}
}

// live reports whether bucket index i is inside the window that ends at the newest bucket.
func (t *tally) live(i int64) bool { return i > t.newest-int64(len(t.buckets)) && i <= t.newest }

// slot returns the ring position of bucket index i (which may be negative).
func (t *tally) slot(i int64) *bucket {
	n := int64(len(t.buckets))
	return &t.buckets[(i%n+n)%n]
}

// add counts one processed frame captured at ts that showed labels. A frame older
// than the window is not counted.
func (t *tally) add(ts time.Time, labels []string) {
	i := ts.UnixNano() / int64(t.width)
	t.newest = max(t.newest, i)
	if !t.live(i) {
		return
	}
	b := t.slot(i)
	if !b.used || b.index != i {
		*b = bucket{used: true, index: i, counts: map[string]uint64{}, first: ts, last: ts}
	}
	b.frames++
	for _, l := range labels {
		b.counts[l]++
	}
	if ts.Before(b.first) {
		b.first = ts
	}
	if ts.After(b.last) {
		b.last = ts
	}
}

// summary sums the live buckets.
func (t *tally) summary(camera string) Summary {
	s := Summary{CameraID: camera}
	counts := map[string]uint64{}
	for _, b := range t.buckets {
		if !b.used || !t.live(b.index) {
			continue
		}
		s.Frames += b.frames
		for l, n := range b.counts {
			counts[l] += n
		}
		if s.WindowStart.IsZero() || b.first.Before(s.WindowStart) {
			s.WindowStart = b.first
		}
		if b.last.After(s.WindowEnd) {
			s.WindowEnd = b.last
		}
	}
	for l, n := range counts {
		s.Counts = append(s.Counts, Count{Label: l, N: n})
	}
	slices.SortFunc(s.Counts, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.Label, b.Label))
	})
	return s
}
