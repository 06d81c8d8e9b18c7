"""Storage layer: tables, connections, migrations, validation, import and queries (no Streamlit here)."""
