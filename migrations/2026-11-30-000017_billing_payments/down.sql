DROP TABLE billing_payments;
