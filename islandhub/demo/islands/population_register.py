"""Population register island: an X-Road style REST extract of DVV's register with a change feed."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from islandhub.demo.islands.base import HttpIsland
from islandhub.demo.model import Address, Person

# X-Road REST: /r1/{instance}/{class}/{member}/{subsystem}/{service}; the client names itself.
SERVICE = "/r1/FI-DEV/GOV/0245437-2/VTJkysely"
CLIENT = "FI-DEV/MUN/0123456-7/islandhub"
MAX_PAGE = 1000
RECENTLY_DEAD_DAYS = 365
MUNICIPALITY_NAMES = {"753": ("Sipoo", "Sibbo")}


def register_record(person: Person, key: int) -> dict[str, Any]:
    """One person as the register extract gives them (S = Finnish, R = Swedish fields)."""
    fi, sv = MUNICIPALITY_NAMES.get(person.municipality_code, ("", ""))
    return {
        "henkilotunnus": person.hetu,
        "etunimet": person.given_names,
        "sukunimi": person.family_name,
        "syntymaaika": person.birth_date.isoformat(),
        "aidinkieli": person.language,
        "kotikunta": {"kuntakoodi": person.municipality_code, "kuntaS": fi, "kuntaR": sv},
        "vakinainenOsoite": address_fields(person.address),
        "turvakielto": person.non_disclosure,
        "kuolinpaiva": person.died.isoformat() if person.died else None,
        "kirjausavain": key,
    }


def address_fields(address: Address) -> dict[str, str]:
    """The permanent address group with its S/R pairs."""
    return {
        "katuosoiteS": address.street_fi,
        "katuosoiteR": address.street_sv,
        "postinumero": address.postal_code,
        "postitoimipaikkaS": address.post_office_fi,
        "postitoimipaikkaR": address.post_office_sv,
    }


class PopulationRegister(HttpIsland):
    """The authoritative register: every resident, paged, and a `kirjausavain` change feed.

    `GET {SERVICE}/henkilot?sivu=N&sivukoko=S` is the whole extract;
    `GET {SERVICE}/muutokset?kirjausavain=K&sivu=N&sivukoko=S` the people whose record changed
    after change key K (all of them from K=0), in change order, each in its current state.
    Both need the `X-Road-Client` header.
    """

    system = "population"
    title = "Population register extract (X-Road REST, change feed)"
    default_port = 8701

    def prepare(self) -> None:
        """Everyone living, and the recently dead with their death date, one change key each."""
        self.lock = threading.Lock()
        self.records: dict[str, dict[str, Any]] = {}
        self.last_key = 0
        cutoff = self.population.today - timedelta(days=RECENTLY_DEAD_DAYS)
        for person in self.population.people:
            if person.died is not None and person.died < cutoff:
                continue
            self.last_key += 1
            self.records[person.hetu] = register_record(person, self.last_key)
            self.add_truth("henkilot", person.hetu, person.person_id)

    def apply_changes(self, n: int) -> list[str]:
        """Move or rename `n` different living people (new change keys); their HETUs."""
        with self.lock:
            living = sorted(h for h, r in self.records.items() if not r["kuolinpaiva"])
            chosen = self.rng.sample(living, min(n, len(living)))
            donors = sorted(self.records)
            for index, hetu in enumerate(chosen):
                record = dict(self.records[hetu])
                donor = self.records[self.rng.choice(donors)]
                if index % 2 == 0:  # a move: another street of the municipality
                    record["vakinainenOsoite"] = _moved(donor["vakinainenOsoite"], self.rng)
                else:  # a marriage: the spouse's family name
                    record["sukunimi"] = _new_name(record["sukunimi"], donor["sukunimi"])
                self.last_key += 1
                record["kirjausavain"] = self.last_key
                self.records[hetu] = record
        return chosen

    def page(self, after: int | None, number: int, size: int) -> dict[str, Any]:
        """One page of records with change key above `after` (all when None), in key order."""
        with self.lock:
            rows = sorted(self.records.values(), key=lambda r: r["kirjausavain"])
            last = self.last_key
        if after is not None:
            rows = [r for r in rows if r["kirjausavain"] > after]
        start = (number - 1) * size
        return {
            "henkilot": rows[start : start + size],
            "sivu": number,
            "sivukoko": size,
            "yhteensa": len(rows),
            "viimeisinKirjausavain": last,
            "ajanTasalla": start + size >= len(rows),
        }

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The X-Road security server in front of the register."""
        return RegisterHandler

    def connection(self) -> dict[str, Any]:
        """The running server, with the X-Road-Client header the service requires."""
        return {
            "base_url": f"{self.base_url}{SERVICE}",
            "headers": {"X-Road-Client": CLIENT},
            "check_path": "/henkilot?sivu=1&sivukoko=1",
        }


def _moved(address: dict[str, str], rng: Any) -> dict[str, str]:
    number = rng.randint(1, 140)
    moved = dict(address)
    for key in ("katuosoiteS", "katuosoiteR"):
        words = address[key].split()
        cut = next((i for i, w in enumerate(words) if w[0].isdigit()), len(words))
        moved[key] = " ".join([*words[:cut], str(number)])
    return moved


def _new_name(current: str, spouse: str) -> str:
    return spouse if spouse != current else f"{current}-{spouse}"


class RegisterHandler(BaseHTTPRequestHandler):
    """GET henkilot / muutokset under the X-Road service path."""

    server_version = "X-Road-SecurityServer/7"

    def do_GET(self) -> None:
        """Answer a register query, or an X-Road error."""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if self.headers.get("X-Road-Client") != CLIENT:
            self._error(400, "Server.ClientProxy.MissingHeader", "X-Road-Client is missing")
            return
        resource = url.path.removeprefix(SERVICE + "/").rstrip("/")
        if not url.path.startswith(SERVICE + "/") or resource not in ("henkilot", "muutokset"):
            self._error(404, "Server.ServerProxy.UnknownService", f"no service {url.path}")
            return
        try:
            number = max(1, int(query.get("sivu", 1)))
            size = min(MAX_PAGE, max(1, int(query.get("sivukoko", 100))))
            after = int(query["kirjausavain"]) if resource == "muutokset" else None
        except (KeyError, ValueError):
            self._error(400, "Server.ServerProxy.BadRequest", "sivu, sivukoko, kirjausavain")
            return
        island: PopulationRegister = self.server.island  # type: ignore[attr-defined]
        self._send(200, orjson.dumps(island.page(after, number, size)), {})

    def _error(self, status: int, code: str, message: str) -> None:
        body = orjson.dumps({"type": code, "message": message, "detail": None})
        self._send(status, body, {"X-Road-Error": code})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the demo prints its own summary."""
