-- A volume listing (newest first: created_at DESC, id DESC, within a project or across all of
-- them for an admin) walks an index in that order and stops at the page's LIMIT, instead of
-- putting every matching row into a temporary b-tree to sort it: listing 1000 of a project's
-- volumes spent more time in that sort than in reading the rows. The new project index covers
-- what volumes_project_idx (project_id, deleted, created_at) served: listings filter on
-- `NOT deleted`, which no index column can order by.
-- Keep in step with the other engine's directory.
DROP INDEX volumes_project_idx;
CREATE INDEX volumes_project_created_idx ON volumes (project_id, created_at, id);
CREATE INDEX volumes_created_idx ON volumes (created_at, id);
