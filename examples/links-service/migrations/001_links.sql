-- The links service's own table, in its own database (or beside other
-- services' tables: every name starts with links_). Users are the auth
-- service's: owner_id is the `sub` of their tokens, not a foreign key.
CREATE TABLE links_short_links (
  code        text        PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z]{7}$'),
  url         text        NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2048),
  owner_id    text        NOT NULL CHECK (char_length(owner_id) BETWEEN 1 AND 255),
  -- How the link was made: by the user with an access token, or by an integration with an API key.
  created_via text        NOT NULL CHECK (created_via IN ('user', 'api_key')),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Listing, newest first, with a (created_at, code) keyset cursor: per owner, and for admins over everyone.
CREATE INDEX links_short_links_owner_idx ON links_short_links (owner_id, created_at DESC, code DESC);
CREATE INDEX links_short_links_created_idx ON links_short_links (created_at DESC, code DESC);
