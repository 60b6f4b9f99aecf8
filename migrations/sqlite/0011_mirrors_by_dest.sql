-- Mirrors by destination peer: the Peers page counts each peer's mirrors, and the mirror list
-- filters by peer (as source or destination).
CREATE INDEX mirrors_dest ON mirrors (dest_peer_id);
