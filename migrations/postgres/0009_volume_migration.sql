-- Volume migration (Cinder's `_name_id`): after a migration the user's volume id lives on the
-- destination backend under the name of the temporary volume that received the data, so the
-- backend name of a volume is `volume-<name_id>` when name_id is set, else `volume-<id>`.
-- Keep in step with the other engine's directory.
ALTER TABLE volumes ADD COLUMN name_id TEXT;
