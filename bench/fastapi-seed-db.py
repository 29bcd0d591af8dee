"""The FastAPI seed's database for `npm run bench` (bench/fastapi-seed.ts runs this).

Run in the bench's copy of the seed (its working directory holds the `user/` package), so that
the seed's own engine creates `./user.db` there with the seed's own models. Reads one JSON object
on stdin: {"emails": [...], "password": "...", "products": n}. Inserts one user per email (the
email is the username the seed's /login/ matches, ids 1..n in order) sharing one bcrypt hash of
the password, made once by the seed's own Hash (passlib), and `products` products. Prints one
JSON line: what it made.
"""

import json
import os
import sys

# The seed's package is in the working directory, not beside this script.
sys.path.insert(0, os.getcwd())

from user import models  # noqa: E402
from user.database import Base, SessionLocal, engine  # noqa: E402
from user.hashing import Hash  # noqa: E402

ADJECTIVES = ["Compact", "Wireless", "Ergonomic", "Vintage", "Solar", "Modular", "Silent", "Rugged"]
NOUNS = ["keyboard", "lamp", "backpack", "kettle", "headphones", "chair", "monitor", "speaker"]

request = json.load(sys.stdin)
emails = request["emails"]
products = int(request["products"])

Base.metadata.create_all(engine)
password_hash = Hash.bcrypt(request["password"])
session = SessionLocal()
try:
    session.bulk_insert_mappings(
        models.User,
        [
            {
                "id": i,
                "username": email,
                # ShowUser (GET /user/{id}) requires both names: a null one would answer 500.
                "first_name": "Bench",
                "last_name": f"User {i}",
                "email": email,
                "password": password_hash,
            }
            for i, email in enumerate(emails, start=1)
        ],
    )
    session.bulk_insert_mappings(
        models.Product,
        [
            {
                "id": n,
                "product_id": f"SEED-{n}",
                "name": f"{ADJECTIVES[n % len(ADJECTIVES)]} {NOUNS[(n // 8) % len(NOUNS)]}",
                "price": (n * 7919) % 100_000,
                "description": f"Item {n} of the bench.",
            }
            for n in range(1, products + 1)
        ],
    )
    session.commit()
finally:
    session.close()

print(json.dumps({"users": len(emails), "products": products, "password_hash": password_hash[:7]}))
