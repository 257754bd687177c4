use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use skystream_feeds::PostFeatures;

/// A post in the recent window.
#[derive(Clone, Debug)]
pub struct RecentPost {
    /// What feeds filter on.
    pub features: Arc<PostFeatures>,
    /// The record's CID.
    pub cid: String,
    /// Likes seen since it was indexed.
    pub likes: u64,
    /// Reposts seen since it was indexed.
    pub reposts: u64,
    /// When it was created (the earlier of `createdAt` and when we saw it), unix seconds.
    pub created_s: f64,
    /// When we indexed it, unix milliseconds.
    pub indexed_ms: i64,
    /// The feeds it belongs to (including ones where it waits for likes).
    pub feeds: Vec<String>,
}

/// The most recent posts, bounded; oldest evicted first.
#[derive(Debug)]
pub struct RecentWindow {
    cap: usize,
    order: VecDeque<String>,
    posts: HashMap<String, RecentPost>,
}

impl RecentWindow {
    /// A window of at most `cap` posts.
    pub fn new(cap: usize) -> Self {
        RecentWindow {
            cap: cap.max(1),
            order: VecDeque::new(),
            posts: HashMap::new(),
        }
    }

    /// Adds or replaces a post.
    pub fn insert(&mut self, uri: String, post: RecentPost) {
        if self.posts.insert(uri.clone(), post).is_none() {
            self.order.push_back(uri);
        }
        while self.posts.len() > self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.posts.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Forgets a post.
    pub fn remove(&mut self, uri: &str) {
        // The order queue keeps the stale uri until it reaches the front; removal from the map
        // is what counts, and the queue is bounded by insertions.
        self.posts.remove(uri);
        if self.order.len() > 2 * self.cap {
            let posts = &self.posts;
            self.order.retain(|u| posts.contains_key(u));
        }
    }

    /// A post by URI.
    pub fn get_mut(&mut self, uri: &str) -> Option<&mut RecentPost> {
        self.posts.get_mut(uri)
    }

    /// Every post, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = (&str, &RecentPost)> {
        self.order
            .iter()
            .rev()
            .filter_map(|u| self.posts.get_key_value(u).map(|(k, v)| (k.as_str(), v)))
    }

    /// How many posts it holds.
    pub fn len(&self) -> usize {
        self.posts.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.posts.is_empty()
    }
}
