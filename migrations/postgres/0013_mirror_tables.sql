-- Which mirrors copy which table. Creating a mirror asks which live mirrors already fill its
-- destination tables; answered from `mirrors.tables` (a JSON array) that read every mirror of
-- the source, 10,000 rows per create beside 10,000 idle mirrors. Kept by the catalog itself: a
-- mirror's tables are set once, when it is created, and mirrors are never deleted.
CREATE TABLE mirror_tables (
    table_name  TEXT NOT NULL,
    mirror_id   TEXT NOT NULL REFERENCES mirrors (id),
    PRIMARY KEY (table_name, mirror_id)
);

INSERT INTO mirror_tables (table_name, mirror_id)
SELECT DISTINCT t.value, m.id FROM mirrors m, json_array_elements_text(m.tables::json) AS t(value);

CREATE FUNCTION quiesce_mirror_tables_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mirror_tables (table_name, mirror_id)
    SELECT DISTINCT t.value, NEW.id FROM json_array_elements_text(NEW.tables::json) AS t(value)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER mirror_tables_on_insert AFTER INSERT ON mirrors
FOR EACH ROW EXECUTE FUNCTION quiesce_mirror_tables_fill();
