package locks

// The seed schema for lock observability: metric names, attribute names and
// their values, shared by every exporter (the OpenTelemetry bridge in
// package oteldiag, JSON) so that a lock reads the same everywhere.
const (
	// MetricWaitDuration is the histogram of contended wait durations, in
	// seconds ([State.Wait]).
	MetricWaitDuration = "lock.wait.duration"
	// MetricHeldDuration is the histogram of hold durations, in seconds
	// ([State.Hold]).
	MetricHeldDuration = "lock.held.duration"

	// AttrType is the attribute that holds the lock's type: TypeMutex or
	// TypeRWMutex ([State.Type]).
	AttrType = "lock.type"
	// AttrID is the attribute that holds the lock's name ([State.Name]).
	AttrID = "lock.id"

	TypeMutex   = "mutex"
	TypeRWMutex = "rwmutex"
)
