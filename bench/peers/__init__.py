"""The servers Infodesk is compared with: the bare verify+decrypt floor and the tutorial peer."""
