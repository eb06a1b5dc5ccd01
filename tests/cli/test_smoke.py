import json


def test_seeded_store_lists_the_multiterminal_phones(seeded):
    phones = json.loads(seeded.ok("phone", "list", "40710", "--json").stdout)
    assert [(p["position"], p["model"]) for p in phones] == [(0, "Cisco 8841"),
                                                            (1, "VIVAit Call Web")]
