<?php
# Managed by ruche (the lab's MediaWiki image): settings taken from the container's environment at
# every request, required at the end of the instance's LocalSettings.php. Nothing here is stored
# in the volume, so a restore into another instance (other database, other address) needs no edit.
if ( !defined( 'MEDIAWIKI' ) ) {
	exit;
}
$rucheEnv = static function ( string $name, string $default = '' ): string {
	$value = getenv( $name );
	return $value === false ? $default : $value;
};
$wgServer = $rucheEnv( 'MEDIAWIKI_SERVER', $wgServer );
$wgCanonicalServer = $wgServer;
$wgDBtype = 'postgres';
$wgDBserver = $rucheEnv( 'MEDIAWIKI_DB_HOST' );
$wgDBport = (int)$rucheEnv( 'MEDIAWIKI_DB_PORT', '5432' );
$wgDBname = $rucheEnv( 'MEDIAWIKI_DB_NAME' );
$wgDBuser = $rucheEnv( 'MEDIAWIKI_DB_USER' );
$wgDBpassword = $rucheEnv( 'MEDIAWIKI_DB_PASSWORD' );

# Behind Caddy on the instance's own Podman network (10.x): the client's address is the one Caddy
# puts in X-Forwarded-For (it never passes on a client's own), for rate limits and blocks.
$wgCdnServersNoPurge = [ '10.0.0.0/8' ];
$wgUsePrivateIPs = true;

# Only the association's admins create accounts; visitors read.
$wgGroupPermissions['*']['createaccount'] = false;
$wgGroupPermissions['*']['edit'] = false;

# Uploads live in the volume (images/ is a link to it); the job-runner sidecar runs the jobs.
$wgEnableUploads = true;
$wgUploadDirectory = '/var/lib/mediawiki-data/images';
$wgJobRunRate = 0;
$wgCacheDirectory = '/var/lib/mediawiki/cache';
# `ruche backup` writes this file (read-only mode) around the dump and the file snapshot only. It lives
# in the volume, which the job-runner sidecar shares (its /tmp is its own), so the sidecar stops
# writing too; a snapshot therefore holds it, and a restore removes it (the entry's "after" command).
$wgReadOnlyFile = '/var/lib/mediawiki-data/state/read-only';

# Mail through the collective's relay.
$wgEnableEmail = true;
$wgEnableUserEmail = false;
$wgPasswordSender = $rucheEnv( 'MEDIAWIKI_MAIL_FROM', $wgPasswordSender );
$wgEmergencyContact = $wgPasswordSender;
if ( $rucheEnv( 'MEDIAWIKI_SMTP_HOST' ) !== '' ) {
	$wgSMTP = [
		'host' => ( $rucheEnv( 'MEDIAWIKI_SMTP_SECURITY' ) === 'tls' ? 'ssl://' : '' ) . $rucheEnv( 'MEDIAWIKI_SMTP_HOST' ),
		'IDHost' => $rucheEnv( 'MEDIAWIKI_MAIL_DOMAIN', 'localhost' ),
		'localhost' => $rucheEnv( 'MEDIAWIKI_MAIL_DOMAIN', 'localhost' ),
		'port' => (int)$rucheEnv( 'MEDIAWIKI_SMTP_PORT', '587' ),
		'auth' => $rucheEnv( 'MEDIAWIKI_SMTP_AUTH' ) === 'true',
		'username' => $rucheEnv( 'MEDIAWIKI_SMTP_USER' ),
		'password' => $rucheEnv( 'MEDIAWIKI_SMTP_PASSWORD' ),
	];
}
