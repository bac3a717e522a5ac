// Package bus provides the buses that carry change notices between
// replicas: Redis pub/sub for a cluster and an in-process one for a single
// replica. Both deliver AT MOST ONCE: a notice published while a
// subscriber is disconnected is gone, so subscribers must detect gaps
// themselves (the resubscribed callback, versions, periodic checks).
package bus
