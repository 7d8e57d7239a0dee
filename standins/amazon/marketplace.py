"""Deterministic order generator and simulated marketplace state for the SP-API stand-in.

Everything is derived from ``(seed, day, orders)`` through one ``random.Random``
so the same arguments always give the same marketplace.

Simulated clock
    The clock starts at the end of ``day`` (UTC) plus 3 hours and only moves
    when :meth:`Marketplace.advance` is called (it does not tick with real time).
    An order is visible once its ``createdTime`` <= now; each scheduled status
    change takes effect (and sets ``lastUpdatedTime``) when the clock passes it.

Money (our composed assumption; Amazon's model does not show an EU VAT example)
    * ``product.price.unitPrice`` is the GROSS unit price (VAT included), EUR.
    * Each line has gross charges: the goods (unit * qty), shipping (first line only), gift
      wrap, a cash-on-delivery fee; and gross discounts taken off the goods or the shipping.
    * Item ``proceeds.breakdowns`` are NET with the TAX apart (as in Amazon's US example):
        - ``ITEM``, ``SHIPPING``, ``GIFT_WRAP``, ``COD_FEE`` = round(gross / (1 + rate), 2)
          (each only when charged);
        - ``DISCOUNT`` = minus the net of the discounts, ``detailedBreakdowns`` ITEM / SHIPPING
          saying what each discount was taken off (net, negative);
        - ``TAX`` = what was paid minus all of the above, ``detailedBreakdowns`` per charge
          (ITEM, SHIPPING, GIFT_WRAP, COD_FEE: gross - net; DISCOUNT: -(gross - net)),
          so the breakdowns add up to the gross exactly and each charge's gross is its
          subtotal plus its tax detail.
      The VAT rate is the destination country's standard rate:
      DE 19 %, FR 20 %, IT 22 %, ES 21 %.
    * ``proceedsTotal`` = what the buyer paid for the line, every charge in, discounts off.
    * Order ``proceeds.grandTotal`` = sum of the lines' ``proceedsTotal``; order
      ``proceeds.breakdowns`` are the per-type sums over the lines.
    * Shipping: free for Prime and for goods totals >= 29.00 EUR, otherwise
      3.99 EUR (DE) / 4.99 EUR (FR, IT, ES).
    * Promotions (about 5 % of orders, one line each, tagged ``promotion``): 10 % off the line's
      goods, a 5.00 coupon on goods of 10.00 or more, or free shipping where shipping was charged.
      Gift wrap (2.99) on half of the gift orders (tag ``gift_wrap``); cash on delivery (fee
      4.00, tag ``cod``) on about 1 % of the German merchant-fulfilled orders. These choices use a
      random stream of their own per order, so the rest of the marketplace stays as it was.
    * The settlement (settlement.py) settles exactly these charges and discounts.

Shipment confirmations (v0 confirmShipment, reference/amazon/README.md §2)
    :meth:`Marketplace.confirm_shipment` records a package as an event at the
    simulated now: the items' shipped quantities rise, the order becomes
    PARTIALLY_SHIPPED or SHIPPED, its ``lastUpdatedTime`` moves to now, and the
    package shows under ``packages`` (PACKAGES). An order with any shipped item
    loses its scheduled cancellations (the stand-in's assumption: Amazon cancels
    unshipped orders, not shipped ones).

Invoice uploads (Feeds 2021-06-30, UPLOAD_VAT_INVOICE; reference/amazon/customer-contact.md §3)
    A feed waits IN_QUEUE for ``FEED_QUEUED_FOR`` and runs IN_PROGRESS for
    ``FEED_PROCESSING_FOR`` of simulated time, then ends DONE or FATAL and gets a
    processing report. Feeds are processed in the order they were created, each
    against the order as it was when its processing ended. What is checked is
    Amazon's Option 3 page as our reference restates it (one marketplace, the
    metadata keys and characters, a PDF, TotalAmount/TotalVATAmount equal to
    Amazon's figures at 2 decimals); the rest is the stand-in's own assumption,
    because Amazon does not document it:
      * the timings above;
      * the report is the classic XML ``ProcessingReport`` of Amazon's feeds, with
        result message codes of the stand-in's own naming;
      * every refusal ends the feed FATAL; a repeat of an invoice number already
        accepted for the order ends DONE with a ``DuplicateInvoiceNumber`` error in
        the report and changes nothing (a retry after a lost answer is harmless);
      * the order must be SHIPPED or PARTIALLY_SHIPPED when processing ends;
      * values other than amounts may hold ASCII letters only (the page says
        "letters"); amounts are plain decimals with a point (the page's character
        list has no point, but its Java example sends amounts);
      * a CreditNote may not exceed the order's totals (the stand-in knows no refunds);
      * ``metadata:ShippingId`` is refused (the stand-in knows no shipping ids) and
        unknown feed options are refused rather than ignored.

Solicitations (Solicitations v1; reference/amazon/customer-contact.md §1)
    productReviewAndSellerFeedback is offered for a SHIPPED order from 5 days after
    ``deliverByWindow.earliestDateTime`` until 30 days after ``latestDateTime`` by
    the simulated clock, once per order. Sending it outside the window or a second
    time gets the 403 ``Unauthorized`` answers sellers reported from Amazon
    (amzn/selling-partner-api-models issue #19, amzn/selling-partner-api-docs issue
    #121). That PARTIALLY_SHIPPED, cancelled and unshipped orders are not offered is
    the stand-in's assumption.

Settlements (Reports 2021-06-30; reference/amazon/README.md §8)
    :meth:`Marketplace.close_settlement` closes a settlement at the simulated now over every
    change of shipped units since the last one (a shipment charges, a cancellation after
    shipping refunds) and publishes it as a DONE ``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``
    report, optionally twice (README §8: settlements repeat across reports) and gzipped. The
    lines and their money are ``settlement.py``'s.

PII (as documented on Amazon's "Access Orders PII" page)
    ``buyer.buyerEmail``/``buyerName`` appear only for MERCHANT orders whose
    status is UNSHIPPED, PARTIALLY_SHIPPED or SHIPPED; the address fields
    ``name``, ``addressLine1-3``, ``postalCode`` and ``phone`` only for those
    statuses too (PENDING and CANCELLED orders show city/country only). The
    phone is never shown for FBA orders.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import gzip as _gzip
import io
import random
import re
import string
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable

from caturactl.core.clock import FixedClock

from . import settlement as settlements

UTC = dt.timezone.utc
CENT = Decimal("0.01")

ALL_INCLUDED = (
    "BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION",
    "FULFILLMENT", "PACKAGES", "TAX", "PAYMENT", "FULFILLMENT_ORDERS",
)
FULFILLMENT_STATUSES = (
    "PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED",
    "SHIPPED", "CANCELLED", "UNFULFILLABLE",
)
PII_STATUSES = {"UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"}
# Not yet released by Amazon: "Pending: payment not authorised. Do not ship" (README.md §7).
NOT_RELEASED_STATUSES = {"PENDING", "PENDING_AVAILABILITY"}

# country -> (marketplaceId, marketplaceName, email domain, VAT rate, flat shipping)
MARKETPLACES = {
    "DE": ("A1PA6795UKMFR9", "Amazon.de", "marketplace.amazon.de", Decimal("0.19"), Decimal("3.99")),
    "FR": ("A13V1IB3VIYZZH", "Amazon.fr", "marketplace.amazon.fr", Decimal("0.20"), Decimal("4.99")),
    "IT": ("APJ6JRA9NG5V4", "Amazon.it", "marketplace.amazon.it", Decimal("0.22"), Decimal("4.99")),
    "ES": ("A1RKKUPIHCS9HS", "Amazon.es", "marketplace.amazon.es", Decimal("0.21"), Decimal("4.99")),
}
# Every EU-region marketplace id the stand-in accepts in ``marketplaceIds``
# (orders exist only for the four above).
KNOWN_MARKETPLACE_IDS = {
    "A1PA6795UKMFR9": "Amazon.de", "A13V1IB3VIYZZH": "Amazon.fr",
    "APJ6JRA9NG5V4": "Amazon.it", "A1RKKUPIHCS9HS": "Amazon.es",
    "A1F83G8C2ARO7P": "Amazon.co.uk", "A1805IZSGTT6HS": "Amazon.nl",
    "A1C3SOZRARQ6R3": "Amazon.pl", "A2NODRKZP88ZB9": "Amazon.se",
    "AMEN7PMS3EDWL": "Amazon.com.be", "A28R8C7NBKEWEA": "Amazon.ie",
}
COUNTRY_WEIGHTS = (("DE", 60), ("FR", 15), ("IT", 13), ("ES", 12))
FREE_SHIPPING_FROM = Decimal("29.00")

# --------------------------------------------------------------------------- catalogue
# sku, title, gross price EUR, weight g, length mm, width mm, height mm
_CATALOGUE_ROWS = [
    ("HG-1001", "Gartenschere Profi, Bypass, 21 cm, rostfrei", "19.99", 240, 215, 70, 25),
    ("HG-1002", "Gartenschlauch 20 m, 1/2 Zoll, knickfest, grün", "34.90", 2300, 320, 320, 110),
    ("HG-1003", "Schlauchbrause mit 8 Strahlarten, Kunststoff", "12.49", 310, 230, 120, 60),
    ("HG-1004", "Pflanzkübel rund, 40 cm, Terrakotta-Optik, frostfest", "29.95", 1800, 400, 400, 350),
    ("HG-1005", "Blumenerde torffrei, 40 Liter", "9.99", 14000, 600, 400, 120),
    ("HG-1006", "Rasensamen Sport und Spiel, 2,5 kg", "24.99", 2600, 350, 250, 90),
    ("HG-1007", "Vogelfutterhaus aus Kiefernholz, wetterfest", "27.50", 1400, 320, 260, 280),
    ("HG-1008", "Solarleuchten Garten, 6er-Set, warmweiß", "22.99", 900, 330, 200, 90),
    ("HG-1009", "Gartenhandschuhe Leder, Größe 9, 2 Paar", "11.90", 260, 260, 140, 40),
    ("HG-1010", "Gießkanne verzinkt, 10 Liter", "32.00", 1900, 520, 230, 380),
    ("HG-1011", "Hochbeet aus Lärchenholz, 120 x 60 x 80 cm", "149.00", 24000, 1250, 650, 200),
    ("HG-1012", "Kompostbeschleuniger, 2,5 kg Eimer", "14.99", 2700, 200, 200, 220),
    ("HG-1013", "Unkrautstecher mit Holzgriff", "8.49", 180, 350, 40, 30),
    ("HG-1014", "Rankgitter aus Metall, 150 x 40 cm, anthrazit", "39.90", 3100, 1520, 410, 30),
    ("HG-1015", "Insektenhotel groß, unbehandeltes Holz", "24.95", 1600, 380, 300, 110),
    ("HG-1016", "Terrassenreiniger-Bürste mit Teleskopstiel", "44.99", 1350, 1200, 250, 100),
    ("HH-2001", "Edelstahl-Topfset, 5-teilig, induktionsgeeignet", "89.00", 5200, 450, 300, 250),
    ("HH-2002", "Bratpfanne Gusseisen, 28 cm", "49.95", 2900, 480, 290, 60),
    ("HH-2003", "Schneidebrett Buche, 40 x 25 cm", "19.90", 1300, 400, 250, 25),
    ("HH-2004", "Küchenmesser Santoku, 18 cm, Damaszener Optik", "39.00", 210, 320, 60, 25),
    ("HH-2005", "Geschirrtücher Halbleinen, 5er-Pack", "15.99", 400, 250, 180, 40),
    ("HH-2006", "Vorratsdosen Glas mit Bambusdeckel, 4er-Set", "26.99", 2200, 300, 220, 160),
    ("HH-2007", "Wäschekorb aus Seegras, 60 Liter", "34.99", 1500, 450, 350, 420),
    ("HH-2008", "Bügelbrett 120 x 38 cm, höhenverstellbar", "59.90", 6800, 1350, 420, 80),
    ("HH-2009", "Staubwedel Straußenfeder, 45 cm", "7.99", 90, 460, 80, 80),
    ("HH-2010", "Putzeimer mit Auswringer, 12 Liter", "13.49", 850, 360, 300, 290),
    ("HH-2011", "Mikrofasertücher, 10er-Pack, farbig sortiert", "9.49", 300, 220, 160, 50),
    ("HH-2012", "Wasserkocher Edelstahl, 1,7 Liter, 2200 W", "29.99", 1250, 240, 170, 250),
    ("HH-2013", "Kaffeemühle manuell, Keramikmahlwerk", "34.50", 620, 200, 110, 110),
    ("HH-2014", "Teekanne Glas mit Siebeinsatz, 1,2 Liter", "21.95", 720, 220, 160, 170),
    ("HH-2015", "Brotkasten Holz mit Rolldeckel", "42.00", 3100, 420, 280, 200),
    ("HH-2016", "Spülbürsten aus Buchenholz, 3er-Set", "6.99", 150, 230, 80, 50),
    ("HH-2017", "Kerzenständer Messing, 2er-Set", "18.99", 540, 180, 120, 100),
    ("HH-2018", "Fußmatte Kokos, 60 x 40 cm, \"Moin\"", "16.90", 1700, 600, 400, 20),
    ("HH-2019", "Zimmerpflanzen-Dünger flüssig, 500 ml", "4.99", 560, 210, 80, 60),
    ("HH-2020", "Wanduhr Bahnhofsuhr, 30 cm, lautlos", "27.95", 890, 320, 320, 60),
    ("HH-2021", "Thermoskanne Edelstahl, 1 Liter", "24.49", 560, 300, 100, 100),
    ("HH-2022", "Backform Springform, 26 cm, antihaftbeschichtet", "12.99", 520, 280, 280, 80),
    ("HH-2023", "Nudelholz aus Buchenholz, 45 cm", "5.99", 330, 460, 60, 60),
    ("HH-2024", "Wäscheständer Aluminium, 18 m Trockenlänge", "54.90", 4100, 1300, 560, 100),
]


def _make_catalogue() -> list[dict[str, Any]]:
    rng = random.Random("amazon-standin-catalogue")
    out = []
    for sku, title, price, weight, length, width, height in _CATALOGUE_ROWS:
        asin = "B0" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(8))
        out.append({
            "sku": sku, "title": title, "asin": asin, "price": Decimal(price),
            "weight_g": weight, "length_mm": length, "width_mm": width, "height_mm": height,
            "tax_class": REDUCED.get(sku, "standard"),
        })
    return out


# Seeds for sowing take the reduced rate in Germany (§ 12 Abs. 2 Nr. 1 UStG with Anlage 2 Nr. 10,
# "Samen ... zur Aussaat"); everything else of the stand-in's catalogue is standard-rated.
REDUCED = {"HG-1006": "reduced"}
CATALOGUE = _make_catalogue()
CATALOGUE_FIELDS = ("sku", "title", "asin", "price", "weight_g", "length_mm", "width_mm", "height_mm", "tax_class")


def catalogue_csv(rows: Iterable[dict[str, Any]] = CATALOGUE) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CATALOGUE_FIELDS)
    for r in rows:
        w.writerow([str(r[f]) for f in CATALOGUE_FIELDS])
    return buf.getvalue()


# Items sold on Amazon that are not (or no longer) in the merchant's catalogue.
_UNKNOWN_ITEMS = [
    ("ALT-0815-GRILL", "Grillrost Edelstahl 54 cm (Auslaufmodell)", "24.90"),
    ("SET-HG-1001-X2", "Gartenschere Profi Doppelpack", "36.99"),
    ("hg-1005-bio", "Bio-Blumenerde 20 Liter", "6.49"),
    ("MISC-LAMP-77", "Tischleuchte Rattan, Ø 25 cm", "45.00"),
]

# --------------------------------------------------------------------------- people and places
_FIRST = {
    "DE": ["Anna", "Lukas", "Julia", "Maximilian", "Sophie", "Felix", "Laura", "Jonas", "Marie", "Leon",
           "Katharina", "Tobias", "Sabine", "Thomas", "Monika", "Stefan", "Petra", "Jürgen", "Ursula",
           "Michael", "Claudia", "Andreas", "Birgit", "Günter", "Lea", "Hannah", "Paul", "Emma", "Niklas", "Jörg"],
    "FR": ["Camille", "Louis", "Léa", "Hugo", "Chloé", "Lucas", "Manon", "Jules", "Inès", "Gabriel",
           "Émilie", "Nicolas", "Isabelle", "Pierre", "Céline", "François", "Anaïs", "Théo"],
    "IT": ["Giulia", "Marco", "Francesca", "Alessandro", "Chiara", "Luca", "Sara", "Matteo", "Elena",
           "Davide", "Valentina", "Giuseppe", "Federica", "Lorenzo", "Niccolò"],
    "ES": ["Lucía", "Hugo", "María", "Martín", "Paula", "Pablo", "Carmen", "Javier", "Sofía",
           "Alejandro", "Elena", "Daniel", "Marta", "Sergio", "José Luis"],
}
_LAST = {
    "DE": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
           "Schwarz", "Zimmermann", "Braun", "Krüger", "Hartmann", "Lange", "Schmitt", "Werner", "Krause",
           "Meier", "Lehmann", "Köhler", "Weiß", "Groß", "von der Heide", "Özdemir", "Nowak"],
    "FR": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
           "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "Fournier", "Girard", "Bonnet"],
    "IT": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino",
           "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Costa"],
    "ES": ["García Pérez", "Rodríguez López", "González Ruiz", "Fernández Díaz", "López Martín",
           "Martínez Gómez", "Sánchez Moreno", "Pérez Jiménez", "Gómez Muñoz", "Hernández Álvarez",
           "Díaz Romero", "Moreno Navarro"],
}
# city, postal base, stateOrRegion
_CITIES = {
    "DE": [("Berlin", 10115, None), ("Hamburg", 20095, None), ("München", 80331, None), ("Köln", 50667, None),
           ("Frankfurt am Main", 60311, None), ("Stuttgart", 70173, None), ("Düsseldorf", 40213, None),
           ("Leipzig", 4109, None), ("Dresden", 1067, None), ("Hannover", 30159, None), ("Nürnberg", 90402, None),
           ("Bremen", 28195, None), ("Essen", 45127, None), ("Dortmund", 44135, None), ("Münster", 48143, None),
           ("Freiburg im Breisgau", 79098, None), ("Augsburg", 86150, None), ("Bonn", 53111, None),
           ("Kassel", 34117, None), ("Rostock", 18055, None), ("Erfurt", 99084, None), ("Regensburg", 93047, None),
           ("Lüneburg", 21335, None), ("Bad Tölz", 83646, None), ("Görlitz", 2826, None), ("Würzburg", 97070, None),
           ("Weißenfels", 6667, None), ("Oberstdorf", 87561, None)],
    "FR": [("Paris", 75001, None), ("Lyon", 69001, None), ("Marseille", 13001, None), ("Toulouse", 31000, None),
           ("Nice", 6000, None), ("Nantes", 44000, None), ("Strasbourg", 67000, None), ("Montpellier", 34000, None),
           ("Bordeaux", 33000, None), ("Lille", 59000, None), ("Rennes", 35000, None), ("Saint-Étienne", 42000, None),
           ("Grenoble", 38000, None), ("Dijon", 21000, None), ("Angers", 49000, None)],
    "IT": [("Roma", 118, "RM"), ("Milano", 20121, "MI"), ("Napoli", 80121, "NA"), ("Torino", 10121, "TO"),
           ("Palermo", 90121, "PA"), ("Genova", 16121, "GE"), ("Bologna", 40121, "BO"), ("Firenze", 50121, "FI"),
           ("Bari", 70121, "BA"), ("Verona", 37121, "VR"), ("Padova", 35121, "PD"), ("Trieste", 34121, "TS")],
    "ES": [("Madrid", 28001, "Madrid"), ("Barcelona", 8001, "Barcelona"), ("Valencia", 46001, "Valencia"),
           ("Sevilla", 41001, "Sevilla"), ("Zaragoza", 50001, "Zaragoza"), ("Málaga", 29001, "Málaga"),
           ("Bilbao", 48001, "Bizkaia"), ("Alicante", 3001, "Alicante"), ("Córdoba", 14001, "Córdoba"),
           ("Valladolid", 47001, "Valladolid"), ("A Coruña", 15001, "A Coruña"), ("Granada", 18001, "Granada")],
}
# German streets: (long form, abbreviated form or None)
_DE_STREETS = [
    ("Hauptstraße", "Hauptstr."), ("Bahnhofstraße", "Bahnhofstr."), ("Gartenstraße", "Gartenstr."),
    ("Schulstraße", "Schulstr."), ("Goethestraße", "Goethestr."), ("Schillerstraße", "Schillerstr."),
    ("Berliner Straße", "Berliner Str."), ("Lindenstraße", "Lindenstr."), ("Kirchstraße", "Kirchstr."),
    ("Friedrich-Ebert-Straße", "Friedrich-Ebert-Str."), ("Ringstraße", "Ringstr."), ("Dorfstraße", "Dorfstr."),
    ("Waldstraße", "Waldstr."), ("Mühlenweg", None), ("Am Markt", None), ("Rosenweg", None),
    ("Birkenallee", None), ("Im Wiesengrund", None), ("Am Sonnenhang", None), ("Kastanienallee", None),
]
_FR_STREETS = ["rue de la Paix", "avenue Jean Jaurès", "boulevard Voltaire", "rue Victor Hugo",
               "place de la République", "rue des Lilas", "allée des Tilleuls", "chemin du Moulin",
               "rue Pasteur", "impasse des Roses"]
_IT_STREETS = ["Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele II", "Via Mazzini", "Piazza Duomo",
               "Via Dante Alighieri", "Viale dei Mille", "Via Verdi", "Via Cavour", "Vicolo Stretto"]
_ES_STREETS = ["Calle Mayor", "Calle de Alcalá", "Avenida de la Constitución", "Calle Real", "Paseo de Gracia",
               "Calle San Juan", "Plaza de España", "Calle del Carmen", "Avenida Andalucía", "Calle Nueva"]
_DE_LINE2 = ["Hinterhaus", "2. OG links", "c/o Praxis Dr. Weber", "Seiteneingang", "Wohnung 12", "3. Etage"]
_FR_LINE2 = ["Bâtiment B", "Appartement 12", "Résidence Les Pins", "2e étage"]
_IT_LINE2 = ["Scala B", "Interno 7", "Palazzina C"]
_COMPANIES = {
    "DE": ["Müller Haustechnik GmbH", "Gartenbau Schmidt GmbH & Co. KG", "Praxis Dr. Weber", "Café Lindenblüte",
           "Hotel Zur Post GmbH", "Kita Sonnenschein e.V.", "Fischer & Söhne OHG", "Bauer Immobilien GmbH"],
    "FR": ["Boulangerie Martin SARL", "Jardins Dubois SAS", "Hôtel du Parc", "Cabinet Leroy"],
    "IT": ["Rossi Costruzioni S.r.l.", "Ristorante Da Luca", "Studio Bianchi", "Vivai Colombo S.n.c."],
    "ES": ["Jardinería López S.L.", "Hostal Mayor", "Construcciones Pérez S.A.", "Clínica Dental Ruiz"],
}
_INSTRUCTIONS = {
    "DE": ["Bitte beim Nachbarn (Nr. 14) abgeben", "Paket bitte in die Garage legen", "Klingel defekt, bitte anrufen",
           "Abstellgenehmigung: Terrasse hinter dem Haus", "Nicht vor 10 Uhr zustellen"],
    "FR": ["Laisser le colis chez le gardien", "Code porte 1234A, 3e étage", "Sonner chez Dubois"],
    "IT": ["Citofonare Rossi, 3° piano", "Lasciare in portineria"],
    "ES": ["Dejar en conserjería", "Llamar antes de entregar"],
}
_GIFTS = {
    "DE": ["Alles Gute zum Geburtstag! Liebe Grüße, Anna", "Frohe Weihnachten und viel Spaß im Garten!",
           "Herzlichen Glückwunsch zum neuen Zuhause – Eure Nachbarn"],
    "FR": ["Joyeux anniversaire ! Bises, Léa", "Bonne fête maman"],
    "IT": ["Buon compleanno! Un abbraccio, Marco"],
    "ES": ["¡Feliz cumpleaños! Besos, Lucía"],
}
_VAT_FORMATS = {"DE": ("DE", 9), "FR": ("FR", 11), "IT": ("IT", 11), "ES": ("ESB", 8)}
_ID_PREFIXES = ["302", "303", "304", "305", "306", "028", "171"]
# Relative frequency of orders per UTC hour (quiet at night, busy in the evening).
_HOUR_WEIGHTS = [2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 8, 9, 9, 8, 8, 8, 9, 11, 12, 12, 10, 7, 4]


def _money(amount: Decimal | str) -> dict[str, str]:
    return {"amount": str(amount), "currencyCode": "EUR"}


def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- records
class ShipmentRefused(ValueError):
    """A confirmShipment request that does not fit the order; the message is the 400's details."""


def _net(gross: Decimal, rate: Decimal) -> Decimal:
    return (gross / (1 + rate)).quantize(CENT, ROUND_HALF_UP)


@dataclass
class Line:
    """One item line and its money; gross amounts are what the buyer sees, nets follow from the
    line's one VAT rate (module docstring, "Money")."""
    item_id: str
    sku: str
    title: str
    asin: str
    unit_price: Decimal
    qty: int
    rate: Decimal
    ship_gross: Decimal = Decimal("0.00")
    gift_wrap_gross: Decimal = Decimal("0.00")
    cod_gross: Decimal = Decimal("0.00")
    item_discount: Decimal = Decimal("0.00")  # gross taken off the goods
    ship_discount: Decimal = Decimal("0.00")  # gross taken off the shipping
    promotion_id: str | None = None
    gift_message: str | None = None

    @property
    def item_gross(self) -> Decimal:
        return self.unit_price * self.qty

    @property
    def item_net(self) -> Decimal:
        return _net(self.item_gross, self.rate)

    @property
    def ship_net(self) -> Decimal:
        return _net(self.ship_gross, self.rate)

    @property
    def gift_wrap_net(self) -> Decimal:
        return _net(self.gift_wrap_gross, self.rate)

    @property
    def cod_net(self) -> Decimal:
        return _net(self.cod_gross, self.rate)

    @property
    def item_discount_net(self) -> Decimal:
        return _net(self.item_discount, self.rate)

    @property
    def ship_discount_net(self) -> Decimal:
        return _net(self.ship_discount, self.rate)

    @property
    def total(self) -> Decimal:
        """What the buyer paid for the line (``proceedsTotal``)."""
        return (self.item_gross + self.ship_gross + self.gift_wrap_gross + self.cod_gross
                - self.item_discount - self.ship_discount)

    @property
    def net(self) -> Decimal:
        return (self.item_net + self.ship_net + self.gift_wrap_net + self.cod_net
                - self.item_discount_net - self.ship_discount_net)

    @property
    def tax(self) -> Decimal:
        return self.total - self.net

    def proceeds(self) -> dict[str, Any]:
        """The item's ``proceeds`` (PROCEEDS): net breakdowns with the TAX apart and detailed."""
        bd: list[dict[str, Any]] = [{"type": "ITEM", "subtotal": _money(self.item_net)}]
        tax_detail = [{"subtype": "ITEM", "value": _money(self.item_gross - self.item_net)}]
        for kind, gross, net in (("SHIPPING", self.ship_gross, self.ship_net),
                                 ("GIFT_WRAP", self.gift_wrap_gross, self.gift_wrap_net),
                                 ("COD_FEE", self.cod_gross, self.cod_net)):
            if gross:
                bd.append({"type": kind, "subtotal": _money(net)})
                tax_detail.append({"subtype": kind, "value": _money(gross - net)})
        discount_gross = self.item_discount + self.ship_discount
        if discount_gross:
            d_net = self.item_discount_net + self.ship_discount_net
            detail = [{"subtype": k, "value": _money(-v)} for k, v in
                      (("ITEM", self.item_discount_net), ("SHIPPING", self.ship_discount_net)) if v]
            bd.append({"type": "DISCOUNT", "subtotal": _money(-d_net), "detailedBreakdowns": detail})
            tax_detail.append({"subtype": "DISCOUNT", "value": _money(-(discount_gross - d_net))})
        bd.append({"type": "TAX", "subtotal": _money(self.tax), "detailedBreakdowns": tax_detail})
        return {"proceedsTotal": _money(self.total), "breakdowns": bd}


@dataclass
class Event:
    """A change to an order that takes effect at ``at`` (simulated time)."""
    at: dt.datetime
    status: str | None = None
    cancelled_by: str | None = None        # BUYER | AMAZON | MERCHANT
    cancel_reason: str | None = None
    buyer_requested: bool = False
    address: dict[str, Any] | None = None
    break_field: str | None = None
    break_value: Any = "abc"
    package: dict[str, Any] | None = None
    instruction: str | None = None  # a delivery instruction the buyer adds later
    shipped: dict[str, int] | None = None  # orderItemId -> units a confirmed package carried


@dataclass
class GeneratedOrder:
    order_id: str
    created: dt.datetime
    first_update: dt.datetime
    country: str
    status: str                     # initial status
    fulfilled_by: str               # MERCHANT | AMAZON
    programs: list[str]
    service_level: str
    buyer_name: str
    buyer_email: str | None
    company: str | None
    po_number: str | None
    vat_id: str | None
    address: dict[str, Any]
    instruction: str | None
    lines: list[Line]
    events: list[Event] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)   # what the generator put in (for tests and demos)


@dataclass
class OrderState:
    """An order as it is at one point of the simulated clock."""
    order: GeneratedOrder
    status: str
    last_updated: dt.datetime
    cancelled_by: str | None = None
    cancel_reason: str | None = None
    buyer_requested: bool = False
    address: dict[str, Any] | None = None
    breaks: list[tuple[str, Any]] = field(default_factory=list)
    packages: list[dict[str, Any]] = field(default_factory=list)
    instruction: str | None = None
    shipped: dict[str, int] = field(default_factory=dict)  # orderItemId -> units confirmed shipped

    def quantity_shipped(self, line: "Line") -> int:
        """Units of ``line`` shipped: all of them once the order is SHIPPED (FBA, change_order),
        else what confirmed packages carried."""
        if self.status == "SHIPPED":
            return line.qty
        return min(line.qty, self.shipped.get(line.item_id, 0))


# --------------------------------------------------------------------------- generator
class _Generator:
    def __init__(self, seed: int, day: dt.date, n: int):
        self.rng = random.Random(f"amazon-standin:{seed}:{day.isoformat()}:{n}")
        self.day = day
        self.n = n
        self.used_ids: set[str] = set()
        self.used_item_ids: set[str] = set()
        self.customers: dict[str, list[dict[str, Any]]] = {c: [] for c in MARKETPLACES}

    # ids ------------------------------------------------------------------
    def order_id(self) -> str:
        r = self.rng
        while True:
            oid = f"{r.choice(_ID_PREFIXES)}-{r.randrange(10**7):07d}-{r.randrange(10**7):07d}"
            if oid not in self.used_ids:
                self.used_ids.add(oid)
                return oid

    def item_id(self) -> str:
        while True:
            iid = str(self.rng.randrange(10**13, 10**14))
            if iid not in self.used_item_ids:
                self.used_item_ids.add(iid)
                return iid

    def relay_email(self, country: str) -> str:
        local = "".join(self.rng.choice(string.ascii_lowercase + string.digits) for _ in range(14))
        return f"{local}@{MARKETPLACES[country][2]}"

    # people ---------------------------------------------------------------
    def phone(self, country: str) -> str:
        r = self.rng
        if country == "DE":
            return r.choice([f"+49 15{r.randint(1, 9)} {r.randint(1000000, 99999999)}",
                             f"0{r.choice(['170', '171', '176', '30', '40', '89', '221'])} {r.randint(100000, 9999999)}"])
        if country == "FR":
            return f"+33 {r.choice('67')} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}"
        if country == "IT":
            return f"+39 3{r.randint(20, 49)} {r.randint(100, 999)} {r.randint(1000, 9999)}"
        return f"+34 6{r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}"

    def street_line(self, country: str) -> str:
        r = self.rng
        no = str(r.randint(1, 120))
        if r.random() < 0.12:
            no += r.choice("abc")
        if country == "DE":
            long, short = r.choice(_DE_STREETS)
            name = short if short and r.random() < 0.3 else long
            return f"{name} {no}"
        if country == "FR":
            return f"{no} {r.choice(_FR_STREETS)}"
        if country == "IT":
            return f"{r.choice(_IT_STREETS)} {no}"
        floor = r.choice(["", ", 1º", ", 2º", ", 3º B", ", 4º izda.", ", bajo"])
        return f"{r.choice(_ES_STREETS)} {no}{floor}"

    def address(self, country: str, name: str, company: str | None, tags: set[str]) -> dict[str, Any]:
        r = self.rng
        city, base, region = r.choice(_CITIES[country])
        postal = f"{base + r.randint(0, 19):05d}"
        addr: dict[str, Any] = {
            "name": name,
            "addressLine1": self.street_line(country),
            "city": city,
            "postalCode": postal,
            "countryCode": country,
            "phone": self.phone(country),
            "addressType": "COMMERCIAL" if company else "RESIDENTIAL",
        }
        if company:
            addr["companyName"] = company
        if region:
            addr["stateOrRegion"] = region
        x, y = r.random(), r.random()
        if country == "DE" and not company and x < 0.033:          # ~2 % of all orders
            tags.add("packstation")
            addr["addressLine1"] = f"Packstation {r.randint(100, 299)}"
            if r.random() < 0.5:
                addr["addressLine2"] = str(r.randint(10**5, 10**10 - 1))   # PostNummer, 6-10 digits
                tags.add("packstation_postnummer")
        elif y < 0.005 and not company:                             # ~0.5 %
            tags.add("po_box")
            if country == "DE":
                addr["addressLine1"] = f"Postfach {r.randint(10, 99)} {r.randint(10, 99)}"
            elif country == "FR":
                addr["addressLine1"] = f"BP {r.randint(1, 999)}"
            elif country == "IT":
                addr["addressLine1"] = f"Casella Postale {r.randint(1, 999)}"
            else:
                addr["addressLine1"] = f"Apartado de Correos {r.randint(1, 999)}"
        elif 0.005 <= y < 0.015:                                    # ~1 %
            tags.add("broken_address")
            kind = r.choice(["no_house_number", "no_postal_code", "no_city"])
            tags.add(f"broken_address:{kind}")
            if kind == "no_house_number":
                addr["addressLine1"] = re.sub(r"\s*\d+\w?(,.*)?$", "", addr["addressLine1"]) \
                    if country != "FR" else re.sub(r"^\d+\w?\s+", "", addr["addressLine1"])
            elif kind == "no_postal_code":
                addr["postalCode"] = ""
            else:
                addr["city"] = ""
        elif r.random() < 0.15:
            line2 = {"DE": _DE_LINE2, "FR": _FR_LINE2, "IT": _IT_LINE2}.get(country)
            if line2:
                addr["addressLine2"] = r.choice(line2)
        return addr

    def variant(self, country: str, line: str) -> str:
        """The same street written differently (abbreviation, case, spacing)."""
        r = self.rng
        options = []
        if country == "DE":
            for long, short in _DE_STREETS:
                if short and line.startswith(long):
                    options.append(short + line[len(long):])
                if short and line.startswith(short):
                    options.append(long + line[len(short):])
            if "ß" in line:
                options.append(line.replace("ß", "ss"))
        elif country == "FR":
            options.append(re.sub(r"^(\d+\w?) ", r"\1, ", line))
            options.append(line.title())
        elif country == "IT":
            options.append(re.sub(r" (\d+\w?)$", r", \1", line))
            options.append(line.replace("Via ", "V. "))
        else:
            options.append(line.replace("Calle ", "C/ "))
            options.append(re.sub(r" (\d+\w?)", r", \1", line, count=1))
        options.append(line.lower())
        options.append(line.upper())
        options.append(line.replace(" ", "  ", 1))
        options.append(" " + line + " ")
        options = [o for o in options if o != line]
        return r.choice(options)

    def new_customer(self, country: str, tags: set[str]) -> dict[str, Any]:
        r = self.rng
        name = f"{r.choice(_FIRST[country])} {r.choice(_LAST[country])}"
        company = r.choice(_COMPANIES[country]) if r.random() < 0.08 else None
        vat = None
        if company and r.random() < 0.5:
            prefix, digits = _VAT_FORMATS[country]
            vat = prefix + "".join(r.choice(string.digits) for _ in range(digits))
        addr_tags: set[str] = set()
        cust = {
            "name": name, "company": company, "vat": vat,
            "email": self.relay_email(country),
            "address": self.address(country, name, company, addr_tags),
            "addr_tags": addr_tags,
        }
        self.customers[country].append(cust)
        return cust

    # orders ---------------------------------------------------------------
    def created_times(self) -> list[dt.datetime]:
        r = self.rng
        start = dt.datetime.combine(self.day, dt.time(0, 0), UTC)
        hours = r.choices(range(24), weights=_HOUR_WEIGHTS, k=self.n)
        return sorted(start + dt.timedelta(hours=h, seconds=r.randrange(3600)) for h in hours)

    def lines(self, country: str, prime: bool, business: bool, tags: set[str]) -> list[Line]:
        r = self.rng
        n_lines = 1 if r.random() < 0.75 else r.randint(2, 4)
        products = r.sample(CATALOGUE, n_lines)
        picked = [(p["sku"], p["title"], p["asin"], p["price"]) for p in products]
        if r.random() < 0.01:
            sku, title, price = r.choice(_UNKNOWN_ITEMS)
            asin = "B0" + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(8))
            picked[r.randrange(len(picked))] = (sku, title, asin, Decimal(price))
            tags.add("unknown_sku")
        qtys = [r.choices((1, 2, 3), weights=(80, 15, 5))[0] for _ in picked]
        goods = sum(p[3] * q for p, q in zip(picked, qtys))
        _, _, _, rate, flat = MARKETPLACES[country]
        shipping = Decimal("0.00") if prime or goods >= FREE_SHIPPING_FROM else flat
        out = []
        for i, ((sku, title, asin, price), qty) in enumerate(zip(picked, qtys)):
            out.append(Line(item_id=self.item_id(), sku=sku, title=title, asin=asin, unit_price=price, qty=qty,
                            rate=rate, ship_gross=shipping if i == 0 else Decimal("0.00")))
        if r.random() < 0.05:
            line = r.choice(out)
            line.promotion_id = f"PLM-{r.randrange(10**8):08d}-{r.choice(['GARTEN', 'HERBST', 'KUECHE'])}"
            tags.add("promotion")
            own = random.Random(f"promotion:{line.item_id}")  # its own stream: the rest stays as it was
            kind = own.choice(("percent", "coupon", "free_shipping"))
            if kind == "free_shipping" and out[0].ship_gross:
                out[0].ship_discount = out[0].ship_gross
                out[0].promotion_id = out[0].promotion_id or line.promotion_id
            elif kind == "coupon" and line.item_gross >= Decimal("10.00"):
                line.item_discount = Decimal("5.00")
            else:
                line.item_discount = (line.item_gross * Decimal("0.10")).quantize(CENT, ROUND_HALF_UP)
        return out

    def generate(self) -> list[GeneratedOrder]:
        r = self.rng
        countries = [c for c, _ in COUNTRY_WEIGHTS]
        weights = [w for _, w in COUNTRY_WEIGHTS]
        out = []
        for created in self.created_times():
            tags: set[str] = set()
            country = r.choices(countries, weights=weights)[0]
            pool = self.customers[country]
            kind = r.random()
            if kind < 0.20 and pool:
                cust = r.choice(pool)
                email, address = cust["email"], dict(cust["address"])
                tags.add("repeat_buyer")
            elif kind < 0.23 and pool:
                cust = r.choice(pool)
                email = self.relay_email(country)
                address = dict(cust["address"])
                address["addressLine1"] = self.variant(country, address["addressLine1"])
                tags.add("repeat_buyer_variant")
            else:
                cust = self.new_customer(country, tags)
                email, address = cust["email"], dict(cust["address"])
            tags |= cust["addr_tags"]

            company = cust["company"]
            fba = r.random() < 0.05
            prime = r.random() < 0.30
            programs = []
            if prime:
                programs.append("PRIME")
            if company:
                programs.append("AMAZON_BUSINESS")
                tags.add("business")
                if cust["vat"]:
                    tags.add("business_vat")
            instruction = None
            if r.random() < 0.04:
                instruction = r.choice(_INSTRUCTIONS[country])
                tags.add("delivery_instruction")
            lines = self.lines(country, prime, bool(company), tags)
            if r.random() < 0.03:
                gift_line = r.choice(lines)
                gift_line.gift_message = r.choice(_GIFTS[country])
                tags.add("gift")
                if random.Random(f"gift_wrap:{gift_line.item_id}").random() < 0.5:
                    gift_line.gift_wrap_gross = Decimal("2.99")
                    tags.add("gift_wrap")
            level = "STANDARD"
            if prime and r.random() < 0.3:
                level = r.choice(["EXPEDITED", "NEXT_DAY"])
            po = f"PO-{self.day.year}-{r.randint(1000, 9999)}" if company and r.random() < 0.4 else None

            order = GeneratedOrder(
                order_id=self.order_id(), created=created,
                first_update=created + dt.timedelta(seconds=r.randint(5, 90)),
                country=country, status="UNSHIPPED", fulfilled_by="AMAZON" if fba else "MERCHANT",
                programs=programs, service_level=level, buyer_name=cust["name"],
                buyer_email=email, company=company,
                po_number=po, vat_id=cust["vat"], address=address, instruction=instruction,
                lines=lines, tags=tags,
            )
            if not fba and country == "DE" and random.Random(f"cod:{order.order_id}").random() < 0.01:
                lines[0].cod_gross = Decimal("4.00")
                tags.add("cod")
            fate = r.random()
            if fba:
                tags.add("fba")
                order.events.append(Event(at=created + dt.timedelta(minutes=r.randint(40, 150)), status="SHIPPED"))
            elif fate < 0.03:
                tags.add("pending")
                order.status = "PENDING"
                order.events.append(Event(at=created + dt.timedelta(minutes=r.randint(30, 90), seconds=r.randrange(60)),
                                          status="UNSHIPPED"))
            elif fate < 0.05:
                tags.add("late_cancel")
                by = r.choice(["BUYER", "AMAZON"])
                order.events.append(Event(
                    at=created + dt.timedelta(hours=r.randint(26, 39), minutes=r.randrange(60)),
                    status="CANCELLED", cancelled_by=by, buyer_requested=(by == "BUYER"),
                    cancel_reason="Order created by mistake" if by == "BUYER" else "Payment could not be verified"))
            elif fate < 0.055:
                tags.add("early_cancel")
                order.events.append(Event(
                    at=created + dt.timedelta(minutes=r.randint(5, 59)), status="CANCELLED",
                    cancelled_by="BUYER", buyer_requested=True, cancel_reason="Found a better price"))
            out.append(order)
        return out


# --------------------------------------------------------------------------- rendering
def deliver_by_window(order: GeneratedOrder) -> tuple[dt.datetime, dt.datetime]:
    """The order's ``fulfillment.deliverByWindow`` (earliest, latest) as FULFILLMENT shows it:
    3-5 days after the purchase day for STANDARD, 2-3 for EXPEDITED, 1-2 for NEXT_DAY."""
    day0 = order.created.date()
    first, last = {"NEXT_DAY": (1, 2), "EXPEDITED": (2, 3)}.get(order.service_level, (3, 5))
    return (dt.datetime.combine(day0 + dt.timedelta(days=first), dt.time(0, 0), UTC),
            dt.datetime.combine(day0 + dt.timedelta(days=last), dt.time(23, 59, 59), UTC))


def _set_path(obj: Any, path: str, value: Any) -> None:
    """Set ``orderItems[0].quantityOrdered``-style paths; silently skip missing parents."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    cur = obj
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.startswith("["):
            idx = int(part[1:-1])
            if not isinstance(cur, list) or idx >= len(cur):
                return
            if last:
                cur[idx] = value
                return
            cur = cur[idx]
        else:
            if not isinstance(cur, dict):
                return
            if last:
                cur[part] = value
                return
            if part not in cur:
                return
            cur = cur[part]


def render(state: OrderState, included: frozenset[str] | set[str]) -> dict[str, Any]:
    """The Order JSON as searchOrders/getOrder would show it with ``included`` datasets."""
    o = state.order
    mp_id, mp_name = MARKETPLACES[o.country][0], MARKETPLACES[o.country][1]
    status = state.status
    pii = status in PII_STATUSES
    merchant = o.fulfilled_by == "MERCHANT"
    d: dict[str, Any] = {
        "orderId": o.order_id,
        "orderAliases": [{"aliasId": o.order_id, "aliasType": "SELLER_ORDER_ID"}],
        "createdTime": _iso(o.created),
        "lastUpdatedTime": _iso(state.last_updated),
        "programs": list(o.programs),
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": mp_id, "marketplaceName": mp_name},
    }
    if "BUYER" in included:
        buyer: dict[str, Any] = {}
        if merchant and pii:
            buyer["buyerName"] = o.buyer_name
            if o.buyer_email:
                buyer["buyerEmail"] = o.buyer_email
        if o.company:
            buyer["buyerCompanyName"] = o.company
        if o.po_number:
            buyer["buyerPurchaseOrderNumber"] = o.po_number
        d["buyer"] = buyer
    if "RECIPIENT" in included:
        addr = dict(state.address or o.address)
        if not pii:
            for k in ("name", "addressLine1", "addressLine2", "addressLine3", "postalCode", "phone"):
                addr.pop(k, None)
        if not merchant:
            addr.pop("phone", None)
        rec: dict[str, Any] = {"deliveryAddress": addr}
        instruction = state.instruction or o.instruction
        if instruction:
            rec["deliveryPreference"] = {"addressInstruction": instruction}
        d["recipient"] = rec
    if "PROCEEDS" in included:
        sums: dict[str, Decimal] = {}
        for ln in o.lines:
            for b in ln.proceeds()["breakdowns"]:
                sums[b["type"]] = sums.get(b["type"], Decimal("0.00")) + Decimal(b["subtotal"]["amount"])
        breakdowns = [{"type": k, "subtotal": _money(v)} for k, v in sums.items() if v or k in ("ITEM", "TAX")]
        d["proceeds"] = {"grandTotal": _money(sum((ln.total for ln in o.lines), Decimal("0.00"))),
                         "breakdowns": breakdowns}
    if "TAX" in included and o.vat_id:
        d["tax"] = {"taxRegistrations": [{
            "entityType": "BUYER", "legalName": o.company, "taxRegistrationType": "VAT",
            "taxRegistrationNumber": o.vat_id,
        }]}
    if "FULFILLMENT" in included:
        day0 = o.created.date()
        ship_latest = dt.datetime.combine(day0 + dt.timedelta(days=1 if o.service_level != "STANDARD" else 2),
                                          dt.time(23, 59, 59), UTC)
        deliver_from, deliver_until = deliver_by_window(o)
        d["fulfillment"] = {
            "fulfillmentStatus": status,
            "fulfilledBy": o.fulfilled_by,
            "fulfillmentServiceLevel": o.service_level,
            "shipByWindow": {"earliestDateTime": _iso(o.created), "latestDateTime": _iso(ship_latest)},
            "deliverByWindow": {
                "earliestDateTime": _iso(deliver_from),
                "latestDateTime": _iso(deliver_until),
            },
        }
    items = []
    for ln in o.lines:
        price: dict[str, Any] = {"unitPrice": _money(ln.unit_price)}
        if o.company:
            price["priceDesignation"] = "BUSINESS_PRICE"
        it: dict[str, Any] = {
            "orderItemId": ln.item_id,
            "quantityOrdered": ln.qty,
            "measurement": {"unit": "COUNT", "value": ln.qty},
            "product": {
                "asin": ln.asin, "sellerSku": ln.sku, "title": ln.title,
                "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                "price": price,
            },
        }
        if "PROCEEDS" in included:
            it["proceeds"] = ln.proceeds()
        if "PROMOTION" in included and ln.promotion_id:
            it["promotion"] = {"breakdowns": [{"promotionId": ln.promotion_id}]}
        if "CANCELLATION" in included and status == "CANCELLED":
            canc: dict[str, Any] = {}
            if state.buyer_requested:
                canc["cancellationRequest"] = {"requester": "BUYER", "cancelReason": state.cancel_reason or ""}
            canc["cancellationExecution"] = {"cancelledBy": state.cancelled_by or "AMAZON",
                                             "cancelReason": state.cancel_reason or ""}
            it["cancellation"] = canc
        if "FULFILLMENT" in included:
            shipped = state.quantity_shipped(ln)
            ful: dict[str, Any] = {"quantityFulfilled": shipped,
                                   "quantityUnfulfilled": 0 if status == "CANCELLED" else ln.qty - shipped}
            if ln.gift_message:
                ful["packing"] = {"giftOption": {"giftMessage": ln.gift_message, "giftWrapLevel": "STANDARD"}}
            it["fulfillment"] = ful
        items.append(it)
    d["orderItems"] = items
    if "PACKAGES" in included and merchant and state.packages:
        d["packages"] = [dict(p) for p in state.packages]
    for path, value in state.breaks:
        _set_path(d, path, value)
    return d


# --------------------------------------------------------------------------- state
def _sort_key_created(s: OrderState) -> tuple[dt.datetime, str]:
    return (s.order.created, s.order.order_id)


def _sort_key_updated(s: OrderState) -> tuple[dt.datetime, str]:
    return (s.last_updated, s.order.order_id)


class Snapshot:
    """All orders visible at one clock reading, pre-sorted for searchOrders."""

    def __init__(self, now: dt.datetime, states: list[OrderState]):
        self.now = now
        self.by_id = {s.order.order_id: s for s in states}
        self.by_created = sorted(states, key=_sort_key_created)
        self.by_updated = sorted(states, key=_sort_key_updated)
        self.created_keys = [_sort_key_created(s) for s in self.by_created]
        self.updated_keys = [_sort_key_updated(s) for s in self.by_updated]
        self._rendered: dict[tuple[str, frozenset[str]], dict[str, Any]] = {}

    def rendered(self, state: OrderState, included: frozenset[str]) -> dict[str, Any]:
        """render() with a per-snapshot cache; callers must not mutate the result."""
        key = (state.order.order_id, included)
        d = self._rendered.get(key)
        if d is None:
            d = self._rendered[key] = render(state, included)
        return d


# --------------------------------------------------------------------------- feeds and solicitations
FEED_QUEUED_FOR = dt.timedelta(seconds=30)       # the stand-in's assumption: Amazon gives no figures
FEED_PROCESSING_FOR = dt.timedelta(seconds=90)
VAT_INVOICE_FEED = "UPLOAD_VAT_INVOICE"
PDF = "application/pdf"
REPORT_CONTENT_TYPE = "text/xml; charset=UTF-8"
# The marketplaces the Option 3 page lists for UPLOAD_VAT_INVOICE (customer-contact.md §3).
VAT_INVOICE_MARKETPLACES = frozenset({
    "A1RKKUPIHCS9HS", "A1F83G8C2ARO7P", "A13V1IB3VIYZZH", "A1PA6795UKMFR9",
    "APJ6JRA9NG5V4", "A1805IZSGTT6HS", "A1C3SOZRARQ6R3", "A2NODRKZP88ZB9",
})
INVOICE_KEYS = ("OrderId", "ShippingId", "InvoiceNumber", "DocumentType", "TotalAmount", "TotalVATAmount",
                "TransactionId")
INVOICE_AMOUNT_KEYS = ("TotalAmount", "TotalVATAmount")
DOCUMENT_TYPES = ("Invoice", "CreditNote")
# "Allowed characters in values: letters, digits, space, , / \ - _ ; : #" (customer-contact.md §3).
INVOICE_TEXT = re.compile(r"[A-Za-z0-9 ,/\\\-_;:#]+")
INVOICE_AMOUNT = re.compile(r"-?\d+(\.\d+)?")
SHIPPED_STATUSES = ("SHIPPED", "PARTIALLY_SHIPPED")
# Amazon does not say what Content-Type its report URLs carry; a text type with an explicit
# charset keeps python-amazon-sp-api from guessing ISO-8859-1 for the plain file.
SETTLEMENT_CONTENT_TYPE = "text/tab-separated-values; charset=UTF-8"
GZIP_CONTENT_TYPE = "application/gzip"
# A settlement covers every EUR marketplace it had sales in; the report lists all four the
# stand-in sells on (the stand-in's assumption: Amazon does not document the field for settlements).
SETTLEMENT_MARKETPLACE_IDS = ("A1PA6795UKMFR9", "A13V1IB3VIYZZH", "APJ6JRA9NG5V4", "A1RKKUPIHCS9HS")
REPORT_READY_AFTER = dt.timedelta(minutes=7)     # the stand-in's choice: processing takes a few minutes
FIRST_SETTLEMENT_SPAN = dt.timedelta(days=14)    # "roughly every 14 days" (README §8)

SOLICITATION = "productReviewAndSellerFeedback"
SOLICIT_FROM = dt.timedelta(days=5)      # after deliverByWindow.earliestDateTime (customer-contact.md §1)
SOLICIT_UNTIL = dt.timedelta(days=30)    # after deliverByWindow.latestDateTime
# Amazon's words for the two refusals, as sellers reported them (amzn/selling-partner-api-models #19,
# amzn/selling-partner-api-docs #121).
SOLICITATION_NOT_AVAILABLE = "The requested solicitation is not available for this amazonOrderId."
SOLICITATION_OUTSIDE_WINDOW = ("You can't use this feature to request a review outside the 5-30 day range after "
                               "the order delivery date.")


class SolicitationRefused(ValueError):
    """A solicitation Amazon does not allow now; the message is Amazon's 403 message."""


class WrongMarketplace(ValueError):
    """The order exists but belongs to another marketplace than the request names."""


@dataclass
class FeedDocument:
    """An input document (uploaded through its presigned URL) or a processing report."""
    document_id: str
    content_type: str
    content: bytes | None = None


@dataclass
class Feed:
    feed_id: str
    feed_type: str
    marketplace_ids: list[str]
    document_id: str
    options: dict[str, str]
    content: bytes | None          # the input document as it was when createFeed was called
    content_type: str
    created: dt.datetime
    status: str | None = None      # DONE or FATAL once processed
    result_document_id: str | None = None

    @property
    def started(self) -> dt.datetime:
        return self.created + FEED_QUEUED_FOR

    @property
    def ends(self) -> dt.datetime:
        return self.started + FEED_PROCESSING_FOR


def _amount(value: str) -> Decimal:
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)


def processing_report(feed_id: str, results: list[tuple[str, str, str]]) -> bytes:
    """Amazon's classic feed ProcessingReport for one message; ``results`` are
    (Error|Warning, message code, description)."""
    env = ET.Element("AmazonEnvelope", {"xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
                                        "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd"})
    header = ET.SubElement(env, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.02"
    ET.SubElement(header, "MerchantIdentifier").text = "STANDIN"
    ET.SubElement(env, "MessageType").text = "ProcessingReport"
    message = ET.SubElement(env, "Message")
    ET.SubElement(message, "MessageID").text = "1"
    report = ET.SubElement(message, "ProcessingReport")
    ET.SubElement(report, "DocumentTransactionID").text = feed_id
    ET.SubElement(report, "StatusCode").text = "Complete"
    errors = any(kind == "Error" for kind, _, _ in results)
    warnings = not errors and any(kind == "Warning" for kind, _, _ in results)
    summary = ET.SubElement(report, "ProcessingSummary")
    for name, value in (("MessagesProcessed", 1), ("MessagesSuccessful", int(not errors)),
                        ("MessagesWithError", int(errors)), ("MessagesWithWarning", int(warnings))):
        ET.SubElement(summary, name).text = str(value)
    for kind, code, description in results:
        result = ET.SubElement(report, "Result")
        ET.SubElement(result, "MessageID").text = "1"
        ET.SubElement(result, "ResultCode").text = kind
        ET.SubElement(result, "ResultMessageCode").text = code
        ET.SubElement(result, "ResultDescription").text = description
    ET.indent(env)
    return ET.tostring(env, encoding="UTF-8", xml_declaration=True) + b"\n"


@dataclass(frozen=True)
class ReportDocument:
    """A report's file as stored behind its presigned URL: gzipped when ``compression`` is GZIP."""
    document_id: str
    content: bytes
    compression: str | None = None
    content_type: str = SETTLEMENT_CONTENT_TYPE


class Marketplace:
    """The simulated marketplace: generated orders, a clock and scheduled changes."""

    def __init__(self, orders: int = 200, seed: int = 1, day: dt.date | None = None,
                 start: dt.datetime | None = None, clock: Any = None):
        self.day = day or dt.date(2026, 11, 24)
        self.seed = seed
        self._lock = threading.RLock()
        self._orders = _Generator(seed, self.day, orders).generate()
        self._by_id = {o.order_id: o for o in self._orders}
        if start is None:
            start = dt.datetime.combine(self.day + dt.timedelta(days=1), dt.time(3, 0), UTC)
        elif start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        # Tests install this clock as the app's clock, so that caturactl and "Amazon" agree; the
        # demo steps it after the app's running clock. Anything with now() (and advance()) will do.
        self.clock = clock if clock is not None else FixedClock(start)
        self._version = 0
        self._snapshot: Snapshot | None = None
        self._package_rng = random.Random(f"amazon-standin-packages:{seed}")
        # (orderId, packageReferenceId) -> the normalised request, to tell a repeat from a conflict
        self._confirmed: dict[tuple[str, int], dict[str, Any]] = {}
        self._shipments: list[dict[str, Any]] = []
        # Feeds and solicitations (see the module docstring); ids come from the seed too.
        self._id_rng = random.Random(f"amazon-standin-feeds:{seed}")
        self._documents: dict[str, FeedDocument] = {}
        self._feeds: dict[str, Feed] = {}
        self._feed_seq = 0
        self._invoices: list[dict[str, Any]] = []
        self._solicited: set[str] = set()
        self._solicitations: list[dict[str, Any]] = []
        # Settlements (Reports 2021-06-30; see close_settlement): their own seeded ids.
        self._settle_rng = random.Random(f"amazon-standin-settlements:{seed}")
        self._settlements: list[settlements.Settlement] = []
        self._reports: list[dict[str, Any]] = []
        self._report_documents: dict[str, ReportDocument] = {}

    # clock ----------------------------------------------------------------
    @property
    def _now(self) -> dt.datetime:
        return self.clock.now()

    def now(self) -> dt.datetime:
        return self.clock.now()

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        if delta < dt.timedelta(0):
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._snapshot = None
            return self.clock.advance(delta)

    # queries --------------------------------------------------------------
    def order_ids(self) -> list[str]:
        return [o.order_id for o in self._orders]

    def generated(self, order_id: str | None = None):
        """The raw generated records (tests and demos may look at ``tags``)."""
        if order_id is None:
            return list(self._orders)
        return self._by_id[order_id]

    def state_at(self, order: GeneratedOrder, t: dt.datetime) -> OrderState:
        st = OrderState(order=order, status=order.status, last_updated=order.first_update)
        for ev in order.events:
            if ev.at > t:
                break
            st.last_updated = max(st.last_updated, ev.at)
            if ev.status:
                st.status = ev.status
                if ev.status == "CANCELLED":
                    st.cancelled_by, st.cancel_reason = ev.cancelled_by, ev.cancel_reason
                    st.buyer_requested = ev.buyer_requested
            if ev.address:
                st.address = {**(st.address or order.address), **ev.address}
            if ev.break_field:
                st.breaks.append((ev.break_field, ev.break_value))
            if ev.package:
                st.packages.append(ev.package)
            if ev.instruction:
                st.instruction = ev.instruction
            for item_id, qty in (ev.shipped or {}).items():
                st.shipped[item_id] = st.shipped.get(item_id, 0) + qty
        return st

    def snapshot(self) -> Snapshot:
        with self._lock:
            snap = self._snapshot
            if snap is None or snap.now != self._now:
                now = self._now
                states = [self.state_at(o, now) for o in self._orders if o.created <= now]
                snap = self._snapshot = Snapshot(now, states)
            return snap

    def visible_orders(self) -> list[dict[str, Any]]:
        full = frozenset(ALL_INCLUDED)
        return [render(s, full) for s in self.snapshot().by_created]

    # changes --------------------------------------------------------------
    def change_order(self, order_id: str, *, status: str | None = None, address: dict[str, Any] | None = None,
                     break_field: str | None = None, break_value: Any = "abc",
                     cancelled_by: str | None = None, cancel_reason: str | None = None,
                     package: dict[str, Any] | None = None, instruction: str | None = None,
                     at: dt.datetime | None = None) -> dict[str, Any]:
        """Record a change at the simulated now (or ``at``); bumps lastUpdatedTime. Returns the new state."""
        with self._lock:
            order = self._by_id.get(order_id)
            if order is None:
                raise KeyError(order_id)
            if status is not None and status not in FULFILLMENT_STATUSES:
                raise ValueError(f"unknown status {status!r}")
            when = at or self._now
            ev = Event(at=when, status=status, address=dict(address) if address else None,
                       break_field=break_field, break_value=break_value, instruction=instruction)
            if status == "CANCELLED":
                ev.cancelled_by = cancelled_by or "BUYER"
                ev.buyer_requested = ev.cancelled_by == "BUYER"
                ev.cancel_reason = cancel_reason or ("Order created by mistake" if ev.buyer_requested
                                                     else "Cancelled by Amazon")
            if status == "SHIPPED" and order.fulfilled_by == "MERCHANT":
                pkg_in = dict(package or {})
                r = self._package_rng
                ev.package = {
                    "packageReferenceId": pkg_in.get("packageReferenceId", str(r.randrange(10**9, 10**10))),
                    "createdTime": _iso(when),
                    "packageStatus": {"status": "SHIPPED", "detailedStatus": "PICKED_UP"},
                    "carrier": pkg_in.get("carrier", "DHL"),
                    "shipTime": _iso(when),
                    "shippingService": pkg_in.get("shippingService", "DHL Paket"),
                    "trackingNumber": pkg_in.get("trackingNumber", f"00340434{r.randrange(10**11, 10**12)}"),
                    "packageItems": [{"orderItemId": ln.item_id, "quantity": ln.qty} for ln in order.lines],
                }
            order.events.append(ev)
            order.events.sort(key=lambda e: e.at)
            self._version += 1
            self._snapshot = None
            return render(self.state_at(order, self._now), frozenset(ALL_INCLUDED))

    # shipment confirmations (v0 confirmShipment) ------------------------------
    def confirm_shipment(self, order_id: str, request: dict[str, Any]) -> bool:
        """Record one confirmed package at the simulated now; True when new, False when this
        identical package was confirmed before (nothing changes then).

        ``request`` is the server's normalised body: marketplaceId, packageReferenceId (int),
        carrierCode, carrierName, shippingMethod, trackingNumber, shipDate (aware datetime),
        shipFromSupplySourceId, orderItems ((orderItemId, quantity, transparencyCodes), ...).
        Raises KeyError when the order does not exist (yet), ShipmentRefused when the request
        does not fit the order.
        """
        with self._lock:
            order = self._by_id.get(order_id)
            now = self._now
            if order is None or order.created > now:
                raise KeyError(order_id)
            state = self.state_at(order, now)
            mp_id = MARKETPLACES[order.country][0]
            if request["marketplaceId"] != mp_id:
                raise ShipmentRefused(f"marketplaceId {request['marketplaceId']} is not the marketplace of "
                                      f"order {order_id} ({mp_id}).")
            ref = request["packageReferenceId"]
            earlier = self._confirmed.get((order_id, ref))
            if earlier is not None:
                # The stand-in's assumption: Amazon does not document repeats. Answering an
                # identical repeat like the first call lets a client retry a call whose answer it
                # lost; the same reference with other content is a conflict.
                if earlier == request:
                    return False
                differ = sorted(k for k in request if request[k] != earlier.get(k))
                raise ShipmentRefused(f"packageReferenceId {ref} was already confirmed for order {order_id} "
                                      f"with a different {', '.join(differ)}; it must be unique within the order.")
            if any(str(p.get("packageReferenceId")) == str(ref) for p in state.packages):
                raise ShipmentRefused(f"packageReferenceId {ref} is already used in order {order_id}; "
                                      "it must be unique within the order.")
            if order.fulfilled_by == "AMAZON":
                raise ShipmentRefused(f"Order {order_id} is fulfilled by Amazon (AFN); only the seller's own "
                                      "(MFN) orders are confirmed.")
            if state.status == "CANCELLED":
                raise ShipmentRefused(f"Order {order_id} is cancelled.")
            if state.status in NOT_RELEASED_STATUSES:
                raise ShipmentRefused(f"Order {order_id} is {state.status}; it must not be shipped yet.")
            ship = request["shipDate"]
            if ship > now:
                raise ShipmentRefused(f"shipDate {_iso(ship)} is in the future (now {_iso(now)}).")
            if ship < order.created:
                raise ShipmentRefused(f"shipDate {_iso(ship)} is before the purchase date {_iso(order.created)}.")
            lines = {ln.item_id: ln for ln in order.lines}
            shipped: dict[str, int] = {}
            for item_id, qty, _ in request["orderItems"]:
                ln = lines.get(item_id)
                if ln is None:
                    raise ShipmentRefused(f"orderItemId {item_id} is not an item of order {order_id}.")
                still = ln.qty - state.quantity_shipped(ln)
                if qty > still:
                    raise ShipmentRefused(f"quantity {qty} for orderItemId {item_id} is more than the {still} "
                                          f"still unshipped (ordered {ln.qty}).")
                shipped[item_id] = qty
            complete = all(state.quantity_shipped(ln) + shipped.get(ln.item_id, 0) >= ln.qty for ln in order.lines)
            status = "SHIPPED" if complete else "PARTIALLY_SHIPPED"
            items = [{"orderItemId": i, "quantity": q, **({"transparencyCodes": list(c)} if c else {})}
                     for i, q, c in request["orderItems"]]
            carrier = request["carrierName"] if request["carrierCode"] == "Other" else request["carrierCode"]
            package = {  # as Orders 2026-01-01 shows it under PACKAGES (orders-2026.md §4)
                "packageReferenceId": str(ref), "createdTime": _iso(now),
                "packageStatus": {"status": "SHIPPED", "detailedStatus": "PICKED_UP"},
                "carrier": carrier, "shipTime": _iso(ship), "trackingNumber": request["trackingNumber"],
                "packageItems": items,
            }
            if request["shippingMethod"]:
                package["shippingService"] = request["shippingMethod"]
            # Amazon cancels orders that are not shipped; a scheduled cancellation must not undo this one.
            order.events = [e for e in order.events if not (e.at > now and e.status == "CANCELLED")]
            order.events.append(Event(at=now, status=status, package=package, shipped=shipped))
            order.events.sort(key=lambda e: e.at)
            self._confirmed[(order_id, ref)] = request
            self._shipments.append({
                "orderId": order_id, "marketplaceId": request["marketplaceId"], "packageReferenceId": str(ref),
                "carrierCode": request["carrierCode"], "carrierName": request["carrierName"],
                "shippingMethod": request["shippingMethod"], "trackingNumber": request["trackingNumber"],
                "shipDate": _iso(ship), "shipFromSupplySourceId": request["shipFromSupplySourceId"],
                "orderItems": items, "confirmedAt": _iso(now), "orderStatus": status,
            })
            self._version += 1
            self._snapshot = None
            return True

    def shipments(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Every confirmed package in the order it was confirmed (copies), or one order's."""
        with self._lock:
            return [copy.deepcopy(r) for r in self._shipments if order_id is None or r["orderId"] == order_id]

    # invoice uploads (Feeds 2021-06-30) -----------------------------------------
    def create_feed_document(self, content_type: str) -> str:
        """A new, empty feed document; returns its id."""
        with self._lock:
            doc_id = str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4))
            self._documents[doc_id] = FeedDocument(doc_id, content_type)
            return doc_id

    def store_document(self, document_id: str, content: bytes) -> None:
        """Keep what was PUT to the document's URL (a second PUT replaces it, as on S3).
        Raises KeyError for an unknown document."""
        with self._lock:
            self._documents[document_id].content = bytes(content)

    def document(self, document_id: str) -> FeedDocument:
        """A copy of the feed document; raises KeyError for an unknown one."""
        with self._lock:
            self._process_due_feeds()
            d = self._documents[document_id]
            return FeedDocument(d.document_id, d.content_type, d.content)

    def create_feed(self, feed_type: str, marketplace_ids: list[str], document_id: str,
                    options: dict[str, str]) -> str:
        """Queue a feed at the simulated now; returns its id. Raises KeyError for an unknown
        input document. What the feed says is only judged when its processing ends."""
        with self._lock:
            doc = self._documents[document_id]
            self._feed_seq += 1
            feed = Feed(feed_id=str(50_000_000_000 + self._feed_seq), feed_type=feed_type,
                        marketplace_ids=list(marketplace_ids), document_id=document_id, options=dict(options),
                        content=doc.content, content_type=doc.content_type, created=self._now)
            self._feeds[feed.feed_id] = feed
            if feed_type == VAT_INVOICE_FEED:
                meta = {k[len("metadata:"):]: v for k, v in options.items() if k.startswith("metadata:")}
                self._invoices.append({
                    "order_id": meta.get("OrderId"), "marketplace_id": marketplace_ids[0] if marketplace_ids else None,
                    "invoice_number": meta.get("InvoiceNumber"), "document_type": meta.get("DocumentType"),
                    "total_amount": meta.get("TotalAmount"), "total_vat_amount": meta.get("TotalVATAmount"),
                    "pdf": doc.content or b"", "pdf_length": len(doc.content or b""), "feed_id": feed.feed_id,
                    "status": "PENDING", "problems": [], "uploaded_at": _iso(self._now), "processed_at": None,
                })
            return feed.feed_id

    def feed(self, feed_id: str) -> dict[str, Any]:
        """The feed as getFeed shows it (feeds_2021-06-30.json Feed) at the simulated now;
        raises KeyError for an unknown id."""
        with self._lock:
            self._process_due_feeds()
            return self._shown(self._feeds[feed_id])

    def feeds(self) -> list[dict[str, Any]]:
        """Every feed as getFeed shows it at the simulated now, oldest first (getFeeds filters them)."""
        with self._lock:
            self._process_due_feeds()
            return [self._shown(f) for f in sorted(self._feeds.values(), key=lambda f: (f.created, int(f.feed_id)))]

    def _shown(self, f: Feed) -> dict[str, Any]:
        with self._lock:
            now = self._now
            out: dict[str, Any] = {"feedId": f.feed_id, "feedType": f.feed_type,
                                   "marketplaceIds": list(f.marketplace_ids), "createdTime": _iso(f.created)}
            if now < f.started:
                out["processingStatus"] = "IN_QUEUE"
                return out
            out["processingStartTime"] = _iso(f.started)
            if f.status is None:
                out["processingStatus"] = "IN_PROGRESS"
                return out
            out.update(processingStatus=f.status, processingEndTime=_iso(f.ends))
            if f.result_document_id:
                out["resultFeedDocumentId"] = f.result_document_id
            return out

    def invoices(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Every UPLOAD_VAT_INVOICE feed, oldest first (copies), with its outcome so far:
        PENDING, ACCEPTED, REJECTED or DUPLICATE, and the problems the report names."""
        with self._lock:
            self._process_due_feeds()
            return [copy.deepcopy(r) for r in self._invoices if order_id is None or r["order_id"] == order_id]

    def _process_due_feeds(self) -> None:
        # Oldest first, so a duplicate is always the later of two uploads, whoever asks first.
        due = sorted((f for f in self._feeds.values() if f.status is None and f.ends <= self._now),
                     key=lambda f: (f.ends, int(f.feed_id)))
        for f in due:
            if f.feed_type == VAT_INVOICE_FEED:
                record = next(r for r in self._invoices if r["feed_id"] == f.feed_id)
                outcome, results = self._judge_invoice(f, record)
                record.update(status=outcome, problems=[desc for _, _, desc in results], processed_at=_iso(f.ends))
                f.status = "FATAL" if outcome == "REJECTED" else "DONE"
            else:   # the server refuses other feed types; kept so that a new one fails loudly
                results = [("Error", "FeedTypeNotSupported", f"the stand-in does not process {f.feed_type}")]
                f.status = "FATAL"
            report_id = str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4))
            self._documents[report_id] = FeedDocument(report_id, REPORT_CONTENT_TYPE,
                                                      processing_report(f.feed_id, results))
            f.result_document_id = report_id

    def _judge_invoice(self, f: Feed, record: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
        """ACCEPTED / REJECTED / DUPLICATE and the report's results, judged at the end of processing."""
        problems: list[tuple[str, str, str]] = []

        def refuse(code: str, description: str) -> None:
            problems.append(("Error", code, description))

        if len(f.marketplace_ids) != 1:
            refuse("MarketplaceIDInputError", f"exactly one marketplace id is required, got {len(f.marketplace_ids)}")
        elif f.marketplace_ids[0] not in VAT_INVOICE_MARKETPLACES:
            refuse("MarketplaceIDInputError", f"marketplace {f.marketplace_ids[0]} does not take {VAT_INVOICE_FEED}")
        meta: dict[str, str] = {}
        for key, value in f.options.items():
            name = key[len("metadata:"):] if key.startswith("metadata:") else None
            if name not in INVOICE_KEYS:
                refuse("InvalidFeedOption", f"unknown feed option {key}; expected metadata:<Key> with Key one of "
                                            f"{', '.join(INVOICE_KEYS)}")
            elif name in INVOICE_AMOUNT_KEYS and not INVOICE_AMOUNT.fullmatch(value):
                refuse("InvalidMetadataValue", f"metadata:{name} {value!r} is not an amount such as 119.00")
            elif name not in INVOICE_AMOUNT_KEYS and not INVOICE_TEXT.fullmatch(value):
                refuse("InvalidMetadataValue", f"metadata:{name} {value!r} may only hold letters, digits, space "
                                               "and , / \\ - _ ; : #")
            else:
                meta[name] = value
        if "ShippingId" in meta:
            refuse("ShippingIdNotSupported", "the stand-in knows no shipping ids; send metadata:OrderId")
        for name in ("OrderId", "InvoiceNumber", "DocumentType"):
            if f"metadata:{name}" not in f.options:
                refuse("MissingMetadata", f"metadata:{name} is required")
        doc_type = meta.get("DocumentType")
        if doc_type is not None and doc_type not in DOCUMENT_TYPES:
            refuse("InvalidMetadataValue", f"metadata:DocumentType {doc_type!r} must be Invoice or CreditNote")
        if f.content is None:
            refuse("MissingDocument", f"nothing was uploaded to feed document {f.document_id} before createFeed")
        elif f.content_type.split(";")[0].strip().lower() != PDF:
            refuse("InvalidDocument", f"the feed document's content type is {f.content_type!r}, not {PDF}")
        elif not f.content.startswith(b"%PDF"):
            refuse("InvalidDocument", "the uploaded document is not a PDF (it does not start with %PDF)")

        order_id = meta.get("OrderId")
        order = self._by_id.get(order_id) if order_id else None
        if order_id and (order is None or order.created > f.ends):
            refuse("OrderNotFound", f"order {order_id} does not exist")
            order = None
        if order is not None:
            mp_id = MARKETPLACES[order.country][0]
            status = self.state_at(order, f.ends).status
            if f.marketplace_ids and f.marketplace_ids[0] != mp_id:
                refuse("OrderMarketplaceMismatch", f"order {order_id} belongs to marketplace {mp_id}, "
                                                   f"not {f.marketplace_ids[0]}")
            if status not in SHIPPED_STATUSES:
                refuse("OrderNotShipped", f"order {order_id} is {status}; invoices are taken for shipped orders only")
            total = sum((ln.total for ln in order.lines), Decimal("0.00"))
            tax = sum((ln.tax for ln in order.lines), Decimal("0.00"))
            for name, amazon in (("TotalAmount", total), ("TotalVATAmount", tax)):
                if name not in meta:
                    continue
                given = _amount(meta[name])
                if doc_type == "CreditNote":
                    if not 0 < abs(given) <= amazon:
                        refuse(f"{name}Mismatch", f"metadata:{name} {meta[name]} of the credit note is zero or "
                                                  f"more than Amazon's {amazon} EUR for order {order_id}")
                elif given != amazon:
                    refuse(f"{name}Mismatch", f"metadata:{name} {meta[name]} does not match Amazon's {amazon} EUR "
                                              f"for order {order_id}")
        if problems:
            return "REJECTED", problems
        earlier = next((r for r in self._invoices if r["status"] == "ACCEPTED" and r["order_id"] == order_id
                        and r["invoice_number"] == meta["InvoiceNumber"]), None)
        if earlier is not None:
            return "DUPLICATE", [("Error", "DuplicateInvoiceNumber",
                                  f"invoice number {meta['InvoiceNumber']} was already uploaded for order {order_id} "
                                  f"(feed {earlier['feed_id']}); this upload changes nothing")]
        return "ACCEPTED", []

    # solicitations (Solicitations v1) ----------------------------------------------
    def solicitation_refusal(self, order_id: str, marketplace_id: str) -> str | None:
        """Amazon's 403 message when productReviewAndSellerFeedback cannot be sent now, None when
        it can. Raises KeyError for an order that does not exist (yet) and WrongMarketplace."""
        with self._lock:
            order = self._by_id.get(order_id)
            now = self._now
            if order is None or order.created > now:
                raise KeyError(order_id)
            mp_id = MARKETPLACES[order.country][0]
            if marketplace_id != mp_id:
                raise WrongMarketplace(f"order {order_id} belongs to marketplace {mp_id}, not {marketplace_id}")
            if order_id in self._solicited or self.state_at(order, now).status != "SHIPPED":
                return SOLICITATION_NOT_AVAILABLE
            earliest, latest = deliver_by_window(order)
            if not earliest + SOLICIT_FROM <= now <= latest + SOLICIT_UNTIL:
                return SOLICITATION_OUTSIDE_WINDOW
            return None

    def send_solicitation(self, order_id: str, marketplace_id: str) -> None:
        """Record productReviewAndSellerFeedback for the order at the simulated now. Raises
        SolicitationRefused (outside the window, sent before, not shipped), KeyError, WrongMarketplace."""
        with self._lock:
            refusal = self.solicitation_refusal(order_id, marketplace_id)
            if refusal is not None:
                raise SolicitationRefused(refusal)
            self._solicited.add(order_id)
            self._solicitations.append({"order_id": order_id, "marketplace_id": marketplace_id,
                                        "solicitation": SOLICITATION, "sent_at": _iso(self._now)})

    def solicitations(self) -> list[dict[str, Any]]:
        """Every solicitation sent, oldest first (copies)."""
        with self._lock:
            return [dict(r) for r in self._solicitations]

    # settlements (Reports 2021-06-30) -------------------------------------------
    def _movements(self, start: dt.datetime, end: dt.datetime) -> list[settlements.UnitMovement]:
        """Every change of shipped units from ``start`` up to just before ``end``, per order item.
        The end is exclusive so that a change recorded at the closing instant, after the close,
        goes to the next settlement instead of to none."""
        weights = {r["sku"]: r["weight_g"] for r in CATALOGUE}
        out = []
        for order in self._orders:
            times = sorted({ev.at for ev in order.events if start <= ev.at < end})
            if not times:
                continue
            _, name, _, rate, _ = MARKETPLACES[order.country]
            previous = self.state_at(order, start - dt.timedelta(microseconds=1))
            for t in times:
                now = self.state_at(order, t)
                for ln in order.lines:
                    before, after = previous.quantity_shipped(ln), now.quantity_shipped(ln)
                    if before == after:
                        continue
                    out.append(settlements.UnitMovement(
                        order_id=order.order_id, order_item_code=ln.item_id, sku=ln.sku, marketplace_name=name,
                        afn=order.fulfilled_by == "AMAZON", at=t, before=before, after=after, ordered=ln.qty,
                        item_net=ln.item_net, item_tax=ln.item_gross - ln.item_net, ship_net=ln.ship_net,
                        ship_tax=ln.ship_gross - ln.ship_net, gift_wrap_net=ln.gift_wrap_net,
                        gift_wrap_tax=ln.gift_wrap_gross - ln.gift_wrap_net, cod_net=ln.cod_net,
                        cod_tax=ln.cod_gross - ln.cod_net, item_discount=ln.item_discount,
                        ship_discount=ln.ship_discount, promotion_id=ln.promotion_id,
                        weight_g=weights.get(ln.sku, 500)))
                previous = now
        return out

    def close_settlement(self, locale: str = "DE", gzip: bool = False, duplicate: bool = False,
                         mixed_decimals: bool = False) -> dict[str, Any]:
        """Close a settlement at the simulated now over everything shipped or taken back since
        the last one and publish it as a DONE report (two reports with ``duplicate``). Returns
        settlementId, startDate, endDate, depositDate, totalAmount, reserve, lines, reportIds,
        reportDocumentIds. Raises ValueError for an unknown locale."""
        if locale not in settlements.LOCALES:
            raise ValueError(f"unknown settlement locale {locale!r}; expected one of {settlements.LOCALES}")
        with self._lock:
            end = self._now
            if self._settlements:
                last = self._settlements[-1]
                start, previous_reserve = last.end, last.reserve
            else:
                earliest = min((o.created for o in self._orders), default=end)
                start = min(end - FIRST_SETTLEMENT_SPAN, earliest - dt.timedelta(minutes=1))
                previous_reserve = settlements.ZERO
            rng = self._settle_rng
            settlement_id = str(rng.randrange(10**10, 10**11))
            s = settlements.close(settlement_id, start, end, self._movements(start, end), previous_reserve,
                                  first=not self._settlements, rng=rng)
            self._settlements.append(s)
            text = settlements.flat_file(s, locale, mixed_decimals).encode("utf-8")
            report_ids, document_ids = [], []
            for _ in range(2 if duplicate else 1):
                report_id = str(rng.randrange(10**10, 10**11))
                doc_id = f"amzn1.spdoc.1.4.eu.{uuid.UUID(int=rng.getrandbits(128), version=4)}"
                created = end  # both copies at once: a later one would lie in the simulated future
                self._report_documents[doc_id] = ReportDocument(
                    doc_id, _gzip.compress(text, mtime=0) if gzip else text, "GZIP" if gzip else None,
                    GZIP_CONTENT_TYPE if gzip else SETTLEMENT_CONTENT_TYPE)
                self._reports.append({
                    "reportId": report_id, "reportType": settlements.REPORT_TYPE,
                    "dataStartTime": _iso(start), "dataEndTime": _iso(end), "createdTime": _iso(created),
                    "processingStatus": "DONE", "processingStartTime": _iso(created),
                    "processingEndTime": _iso(created + REPORT_READY_AFTER), "reportDocumentId": doc_id,
                    "marketplaceIds": list(SETTLEMENT_MARKETPLACE_IDS),
                })
                report_ids.append(report_id)
                document_ids.append(doc_id)
            return {"settlementId": settlement_id, "startDate": _iso(start), "endDate": _iso(end),
                    "depositDate": _iso(s.deposit), "totalAmount": str(s.total), "reserve": str(s.reserve),
                    "lines": len(s.rows), "reportIds": report_ids, "reportDocumentIds": document_ids}

    def reports(self) -> list[dict[str, Any]]:
        """Every report (copies), oldest first, as getReports shows it."""
        with self._lock:
            return copy.deepcopy(self._reports)

    def report_document(self, document_id: str) -> ReportDocument:
        """The stored report file; raises KeyError for an unknown id."""
        with self._lock:
            return self._report_documents[document_id]

    def settlement_text(self, report_id: str) -> str:
        """The flat file of a report, uncompressed; raises KeyError for an unknown report."""
        with self._lock:
            report = next((r for r in self._reports if r["reportId"] == report_id), None)
            if report is None:
                raise KeyError(report_id)
            doc = self._report_documents[report["reportDocumentId"]]
        raw = _gzip.decompress(doc.content) if doc.compression == "GZIP" else doc.content
        return raw.decode("utf-8")
