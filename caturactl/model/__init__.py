"""The SQLAlchemy models; importing this package registers every table on ``Base.metadata``."""

from caturactl.core.db import Base
from caturactl.customers.models import Customer, CustomerAddress, CustomerEmail
from caturactl.core.cursors import Cursor, RateBudget
from caturactl.fulfilment.models import DeliveryLine, DeliveryNote, InboundFile, ShippedParcel, Stock
from caturactl.fulfilment.dropship.models import (DropshipAvailability, PurchaseOrder, PurchaseOrderCancellation,
                                                 PurchaseOrderLine, PurchaseOrderParcel)
from caturactl.fulfilment.dropship.returns import DropshipReturn, DropshipReturnLine
from caturactl.fulfilment.dropship.purchases import PurchaseCredit, PurchaseInvoice, PurchaseInvoiceLine
from caturactl.core.events import Event, EventKind
from caturactl.billing.models import Invoice, InvoiceCounter, ReviewRequest
from caturactl.jobs.models import JobRun
from caturactl.orders.models import Order, OrderCounter, OrderLine
from caturactl.outbox.models import OutboxMessage
from caturactl.catalogue.models import ChannelStock, Product
from caturactl.accounting.models import ExportBatch, Settlement, SettlementDifference
from caturactl.orders.tickets import Ticket
from caturactl.payments.models import BankCredit, BankStatement, Payment, PaymentReceipt
from caturactl.portal.models import LoginThrottle, PartnerUser, PortalSession

__all__ = ["Base", "Customer", "CustomerAddress", "CustomerEmail", "Cursor", "RateBudget", "DeliveryLine", "DeliveryNote",
           "InboundFile", "ShippedParcel", "Stock", "Event",
           "EventKind", "ExportBatch", "Invoice", "JobRun", "InvoiceCounter", "ReviewRequest", "Order", "OrderCounter", "OrderLine", "OutboxMessage", "Product", "ChannelStock",
           "Settlement", "SettlementDifference", "Ticket",
           "Payment", "PaymentReceipt", "BankStatement", "BankCredit",
           "DropshipAvailability", "PurchaseOrder", "PurchaseOrderCancellation", "PurchaseOrderLine",
           "PurchaseOrderParcel", "PartnerUser", "PortalSession", "LoginThrottle",
           "DropshipReturn", "DropshipReturnLine", "PurchaseCredit", "PurchaseInvoice", "PurchaseInvoiceLine"]
