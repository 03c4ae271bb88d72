package feedstore

import "feedline/schemas"

// An entry reaches many feeds: a post fanned out to its author's
// followers, and a shop's news copied into the feed of everyone who
// follows the shop or comes back after a while. Held once per feed, ten
// thousand followers of a shop whose timeline holds its last 800 news
// took 8 million copies; so an entry a feed takes is the author's
// timeline entry when that holds it, which every feed then shares.

// shareWithTimelines replaces each of entries that its author's timeline
// holds by the timeline's own entry. It takes each author's shard lock
// in turn, holding no other.
func (s *Store) shareWithTimelines(entries []*schemas.FeedEntry) error {
	byAuthor := map[string][]int{}
	for i, e := range entries {
		byAuthor[e.Author] = append(byAuthor[e.Author], i)
	}
	for author, at := range byAuthor {
		sh := s.shardOf(author)
		if err := sh.rlock(); err != nil {
			return err
		}
		shareFrom(sh.timelines[author], entries, at)
		sh.mu.RUnlock()
	}
	return nil
}

// shareFrom replaces entries[i], for each i of at, by tl's equal entry.
func shareFrom(tl *entryList, entries []*schemas.FeedEntry, at []int) {
	if tl == nil {
		return
	}
	for _, i := range at {
		if j, found := tl.search(entries[i]); found && *tl.items[j] == *entries[i] {
			entries[i] = tl.items[j]
		}
	}
}

// timelineEntry is author's timeline entry equal to e, or e.
func (s *Store) timelineEntry(e *schemas.FeedEntry) (*schemas.FeedEntry, error) {
	entries := []*schemas.FeedEntry{e}
	if err := s.shareWithTimelines(entries); err != nil {
		return nil, err
	}
	return entries[0], nil
}

// shareRestored makes the feeds of a store just restored, not yet in use,
// share their authors' timeline entries (a checkpoint written before
// sharing holds a copy per feed).
func (s *Store) shareRestored() {
	for _, sh := range s.shards {
		for _, l := range sh.feeds {
			byAuthor := map[string][]int{}
			for i, e := range l.items {
				byAuthor[e.Author] = append(byAuthor[e.Author], i)
			}
			for author, at := range byAuthor {
				shareFrom(s.shardOf(author).timelines[author], l.items, at)
			}
		}
	}
}
