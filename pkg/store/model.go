package store

import (
	"strings"
	"time"

	"github.com/bbsboard/bbs/pkg/topic"
	"gorm.io/gorm"
)

// topicRow is the GORM model of a topic. It never leaves this package: the
// domain gets a topic.Topic, the wire gets its own JSON type.
type topicRow struct {
	ID        int64 `gorm:"primaryKey"`
	Comment   string
	TokenHash []byte
	IdemHash  nullBytes // sha256 of the create's idempotency key, or NULL
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt gorm.DeletedAt // soft delete: the row stays for moderation
}

func (topicRow) TableName() string { return "topics" }

func (r *topicRow) domain() topic.Topic {
	return topic.Topic{ID: r.ID, Comment: r.Comment, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// changeRow is one entry of the change log: what version V did, with the
// topic as it was at V, so a replica that missed V can replay it exactly.
type changeRow struct {
	Version     int64 `gorm:"primaryKey;autoIncrement:false"`
	Kind        string
	TopicID     int64
	Comment     *string
	CreatedAt   *time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt   *time.Time `gorm:"autoUpdateTime:false"`
	CommittedAt time.Time  `gorm:"column:committed_at"`
	Stamp       int64
	// The topic that slid into the first page, for a delete.
	FillID        *int64
	FillComment   *string
	FillCreatedAt *time.Time `gorm:"autoCreateTime:false"`
	FillUpdatedAt *time.Time `gorm:"autoUpdateTime:false"`
}

func (changeRow) TableName() string { return "topic_changes" }

// storedKind is a kind as the change log's kind column spells it (the
// event names of the first release: rows written then are read the same).
func storedKind(k topic.Kind) string {
	if k == topic.Reset {
		return string(k)
	}
	return "topic." + string(k)
}

// kindOf reads the kind column back.
func kindOf(stored string) topic.Kind {
	return topic.Kind(strings.TrimPrefix(stored, "topic."))
}

func (c *changeRow) domain() topic.Change {
	kind := kindOf(c.Kind)
	ch := topic.Change{Version: c.Version, Kind: kind, ID: c.TopicID, Stamp: c.Stamp}
	if kind != topic.Deleted && c.Comment != nil && c.CreatedAt != nil && c.UpdatedAt != nil {
		ch.Topic = topic.Topic{ID: c.TopicID, Comment: *c.Comment, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
	}
	if c.FillID != nil && c.FillComment != nil && c.FillCreatedAt != nil && c.FillUpdatedAt != nil {
		ch.Fill = &topic.Topic{ID: *c.FillID, Comment: *c.FillComment, CreatedAt: c.FillCreatedAt.UTC(), UpdatedAt: c.FillUpdatedAt.UTC()}
	}
	// A delete scrubs its topic's text from the log (scrubText): what is
	// left cannot be replayed.
	ch.Redacted = (kind == topic.Created || kind == topic.Updated) && c.Comment == nil ||
		c.FillID != nil && c.FillComment == nil
	return ch
}
