"""The one way caturactl parses XML: entities are not expanded, DTDs are not loaded, the network
is never touched and huge trees are refused (files come from fulfillers, carriers and partners)."""

from __future__ import annotations

from lxml import etree


def parser(*, remove_blank_text: bool = False) -> etree.XMLParser:
    """A new safe parser. Not shared between calls: an lxml parser must not be used from two
    threads at once."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_blank_text=remove_blank_text)
