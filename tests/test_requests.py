from collections import Counter

from aflab.setting.requests import load_requests, select, split_of


def test_request_set_size_and_categories():
    reqs = load_requests()
    harmful = [r for r in reqs if r.harmful]
    assert len(harmful) >= 240 and len([r for r in reqs if not r.harmful]) >= 60
    cats = Counter(r.category for r in harmful)
    assert len(cats) >= 8 and min(cats.values()) >= 20
    assert len({r.request for r in reqs}) == len(reqs)


def test_stored_split_is_the_seeded_hash_split():
    reqs = load_requests()
    assert all(r.split == split_of(r.id) for r in reqs)
    test = select(reqs, "test", harmful=True)
    assert 0.2 < len(test) / len([r for r in reqs if r.harmful]) < 0.4


def test_split_is_deterministic_and_seeded():
    assert split_of("weapons-001") == split_of("weapons-001")
    assert [split_of(f"x-{i}", seed=1) for i in range(50)] != [split_of(f"x-{i}", seed=2) for i in range(50)]
