"""Helpers of the deployment tests: PostgreSQL databases and a production DAGSTER_HOME."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str

    def connect(self, dbname: str = "postgres"):
        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname
        )

    def env(self, dbname: str) -> dict[str, str]:
        """The variables ``deploy/dagster.yaml`` reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": dbname,
        }


def create_database(server: PgServer) -> str:
    name = f"bkbn_test_{secrets.token_hex(5)}"
    conn = server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def drop_database(server: PgServer, name: str) -> None:
    conn = server.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def make_dagster_home(root: Path) -> Path:
    """A ``DAGSTER_HOME`` holding the production ``deploy/dagster.yaml`` unchanged."""
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    return home


def write_catalogue(folder: Path, listing_ids: list[str]) -> Path:
    """A nightly export: ``catalogue.csv`` and one small real photo per listing."""
    import csv
    import io

    from PIL import Image

    photos = folder / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, listing_id in enumerate(listing_ids):
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (120 + 30 * i, 110, 100)).save(buf, format="JPEG")
        (photos / f"p{i}.jpg").write_bytes(buf.getvalue())
        rows.append(
            {
                "listing_id": listing_id,
                "address": f"{i + 1} Harbour Road",
                "city": "Testville",
                "price": 250000 + i,
                "currency": "EUR",
                "beds": 2,
                "baths": 1,
                "area_m2": 70,
                "style": "scandi-warm",
                "photos": f"photos/p{i}.jpg",
                "capture": "",
                "updated_at": "2026-12-01T08:00:00Z",
            }
        )
    path = folder / "catalogue.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
