"""The embedded engine's searches scan a collection a page at a time, keeping only the best matches:
the answers must be those of sorting every candidate, across page boundaries."""
import math


def _unit_2d(angle):
    return [math.cos(angle), math.sin(angle)]


def test_search_faces_over_many_pages_keeps_the_best_max_faces_in_order(api):
    c = api.client()
    c.create_collection(CollectionId="wide")
    # The searched face at angle 0, 12,000 others between 0.1 and 1.5 rad: each one's similarity differs
    # from the next by far more than rounding, so the order is exact. Imported in shuffled batches of the
    # most ImportFaces takes, so that id order (the scan's) and score order differ.
    angles = [0.1 + 1.4 * ((i * 7_919) % 12_000) / 12_000 for i in range(12_000)]
    ids = []
    for start in range(0, len(angles), 4096):
        ids += api.import_faces("wide", [_unit_2d(a) for a in angles[start:start + 4096]])
    searched = api.import_faces("wide", [_unit_2d(0.0)])[0]

    def expected(limit, threshold):
        scored = [(100 * math.cos(a), face) for a, face in zip(angles, ids)]
        scored = [s for s in scored if s[0] >= threshold]
        return [face for _, face in sorted(scored, key=lambda s: (-s[0], s[1]))[:limit]]

    for limit, threshold in [(100, 0), (4096, 0), (4096, 99.9), (1, 50)]:
        r = c.search_faces(CollectionId="wide", FaceId=searched, MaxFaces=limit, FaceMatchThreshold=threshold)
        got = [m["Face"]["FaceId"] for m in r["FaceMatches"]]
        assert got == expected(limit, threshold), (limit, threshold)
        similarities = [m["Similarity"] for m in r["FaceMatches"]]
        assert similarities == sorted(similarities, reverse=True)
